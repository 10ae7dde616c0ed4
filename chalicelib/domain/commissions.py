"""Distribution (分销) rules: commissions per order line and level, clawbacks, the account's figures.

- A commission is per-mille of a line's real paid amount (`payable_fen`, after every discount),
  rounded down, at the rate of the line's product for that level (1: the buyer's referrer, 2: the
  referrer's referrer).
- A refund of `units` of a line claws back the commission of those units cumulatively, as refunds
  are computed (domain/refunds.py): what `refunded` units are worth is commission * refunded //
  quantity, the line's last unit taking the remainder, so partial clawbacks add up to exactly the
  line's commission, whatever order the refunds come in.
- The account keeps five figures; every ledger entry states its deltas on them, and the account is
  the sum of its entries (tests/unit/test_commission_rules.py checks it against a model):
  earn (frozen +), settle (frozen -, available +), clawback (frozen - or available -, clawed_back +),
  withdraw (available -, pending +), paid (pending -, withdrawn +), returned (pending -, available +),
  shared (frozen -, withdrawn +: paid to the distributor by profit sharing), shared_debt
  (available -, withdrawn +: what a split paid beyond the commission's frozen remainder, after a
  clawback since it was planned).
  `available` may go negative (a clawback after settlement): a debt netted against later
  commissions; a withdrawal needs amount <= available, so nothing leaves until it is paid back.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Mapping

FIGURES = ("frozen_fen", "available_fen", "pending_fen", "withdrawn_fen", "clawed_back_fen")
MAX_PERMILLE = 300  # level 1 + level 2 together: WeChat's profit sharing splits at most 30% of a payment

# Entry kinds and the figures they move (+1 adds the amount, -1 takes it).
MOVES: dict[str, dict[str, int]] = {
    "earn": {"frozen_fen": 1},
    "settle": {"frozen_fen": -1, "available_fen": 1},
    "clawback_frozen": {"frozen_fen": -1, "clawed_back_fen": 1},
    "clawback_available": {"available_fen": -1, "clawed_back_fen": 1},
    "withdraw": {"available_fen": -1, "pending_fen": 1},
    "paid": {"pending_fen": -1, "withdrawn_fen": 1},
    "returned": {"pending_fen": -1, "available_fen": 1},
    "shared": {"frozen_fen": -1, "withdrawn_fen": 1},
    "shared_debt": {"available_fen": -1, "withdrawn_fen": 1},
}


def deltas(kind: str, amount_fen: int) -> dict[str, int]:
    """The figures an entry of `kind` moves, by `amount_fen` (>= 0)."""
    if amount_fen < 0:
        raise ValueError("an entry's amount is never negative")
    return {figure: sign * amount_fen for figure, sign in MOVES[kind].items()}


def balance(entries: Iterable[tuple[str, int]]) -> dict[str, int]:
    """The account's figures as the sum of its entries (kind, amount_fen)."""
    totals = dict.fromkeys(FIGURES, 0)
    for kind, amount in entries:
        for figure, delta in deltas(kind, amount).items():
            totals[figure] += delta
    return totals


@dataclass(frozen=True)
class Rate:
    level1_permille: int = 0
    level2_permille: int = 0

    def for_level(self, level: int) -> int:
        return self.level1_permille if level == 1 else self.level2_permille


def valid_rate(level1: int, level2: int) -> bool:
    return 0 <= level1 <= MAX_PERMILLE and 0 <= level2 <= MAX_PERMILLE and level1 + level2 <= MAX_PERMILLE


@dataclass(frozen=True)
class LineCommission:
    sku_id: str
    product_id: str
    quantity: int
    base_fen: int  # the line's payable_fen
    permille: int
    commission_fen: int
    refunded_units: int = 0
    clawed_fen: int = 0

    @property
    def remaining_fen(self) -> int:
        return self.commission_fen - self.clawed_fen


def line_commissions(lines: Iterable, rates: Mapping[str, Rate], default: Rate,
                     level: int) -> tuple[LineCommission, ...]:
    """Each order line's commission for `level` (lines carry sku_id, product_id, quantity, payable_fen)."""
    out = []
    for line in lines:
        permille = rates.get(line.product_id, default).for_level(level)
        out.append(LineCommission(sku_id=line.sku_id, product_id=line.product_id, quantity=int(line.quantity),
                                  base_fen=int(line.payable_fen), permille=permille,
                                  commission_fen=int(line.payable_fen) * permille // 1000))
    return tuple(out)


def _worth(line: LineCommission, units: int) -> int:
    if units >= line.quantity:
        return line.commission_fen
    return line.commission_fen * units // line.quantity


def claw_units(line: LineCommission, units: int) -> LineCommission:
    """The line after `units` more of its units are refunded (capped at what is left)."""
    refunded = min(line.quantity, line.refunded_units + max(units, 0))
    return replace(line, refunded_units=refunded, clawed_fen=_worth(line, refunded))


def clawback(lines: tuple[LineCommission, ...], refund_lines: Iterable[tuple[str, int]],
             whole_order: bool) -> tuple[tuple[LineCommission, ...], int]:
    """Lines after a refund of `refund_lines` (sku_id, units), and the fen it claws back. A refund
    naming no lines claws back everything left only when it made the order wholly refunded (a
    delivery-fee refund claws nothing)."""
    wanted = {sku_id: units for sku_id, units in refund_lines}
    if not wanted and whole_order:
        wanted = {line.sku_id: line.quantity for line in lines}
    after = []
    for line in lines:
        units = wanted.pop(line.sku_id, 0)
        after.append(claw_units(line, units) if units else line)
    taken = sum(line.clawed_fen for line in after) - sum(line.clawed_fen for line in lines)
    return tuple(after), taken
