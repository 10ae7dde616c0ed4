"""How much a refund returns (API.md "After-sales").

A line's refund is its payable_fen times the share of its units refunded, rounded down, with the
line's last unit taking the remainder: computed cumulatively (what all refunds of the line
return so far, minus what earlier refunds returned), so partial refunds of a line always add up
to exactly its payable_fen. The delivery fee is refunded with the whole order, and only when
nothing has shipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from chalicelib.errors import BadRequest


@dataclass(frozen=True)
class LineShare:
    sku_id: str
    quantity: int  # units bought
    payable_fen: int  # what the line really cost, after discounts


def refund_for_units(line: LineShare, already_refunded: int, units: int) -> int:
    """Fen returned for `units` more units of `line`, after `already_refunded` units."""
    if units <= 0 or already_refunded < 0 or already_refunded + units > line.quantity:
        raise BadRequest("More units than the line has left to refund", code="refund_exceeds_order",
                         details=[{"sku_id": line.sku_id, "refundable": line.quantity - max(already_refunded, 0)}])
    return _cumulative(line, already_refunded + units) - _cumulative(line, already_refunded)


def _cumulative(line: LineShare, units: int) -> int:
    if units >= line.quantity:
        return line.payable_fen  # the last unit takes the remainder
    return line.payable_fen * units // line.quantity


def refund_amount(lines: list[LineShare], already_refunded: dict[str, int], request: dict[str, int],
                  delivery_fee_fen: int, refund_delivery_fee: bool) -> int:
    """The total for refunding `request` (sku_id -> units) of an order."""
    by_sku = {line.sku_id: line for line in lines}
    unknown = [sku_id for sku_id in request if sku_id not in by_sku]
    if unknown:
        raise BadRequest("These SKUs are not in the order", code="sku_not_in_order",
                         details=[{"sku_id": sku_id} for sku_id in unknown])
    total = sum(refund_for_units(by_sku[sku_id], already_refunded.get(sku_id, 0), units)
                for sku_id, units in request.items())
    return total + (delivery_fee_fen if refund_delivery_fee else 0)


# ------------------------------------------------------------- a completed refund and its order

REFUNDABLE_ORDER_STATUSES = ("paid", "shipped", "completed")


class RefundExceedsPayment(Exception):
    """Counting this refund would take the order's refunded total above what was paid."""


@dataclass(frozen=True)
class OrderAfterRefund:
    """What completing a refund does to its order, decided from the order item as read (the
    storage write is conditioned on `expected_*`, so a concurrent change makes it read again)."""
    expected_status: str
    expected_refunded_fen: int
    status: str
    refunded_fen: int
    release_in_flight: bool


def order_after_refund(*, status: str, transaction_id: str | None, payable_fen: int, refunded_fen: int,
                       in_flight: frozenset[str], refund_transaction_id: str, out_refund_no: str,
                       amount_fen: int, count: bool = True) -> OrderAfterRefund | None:
    """None when the order does not change: the refund returns another payment (a late or second
    one, refunded in full) and was not holding the order's shipping. A refund of the order's own
    payment moves its refunded total, never above payable_fen (RefundExceedsPayment), and makes it
    `refunded` when the total reaches payable_fen. `count=False` leaves the total alone."""
    counts = count and transaction_id is not None and refund_transaction_id == transaction_id
    releases = out_refund_no in in_flight
    if not counts and not releases:
        return None
    total = refunded_fen + (amount_fen if counts else 0)
    if total > payable_fen:
        raise RefundExceedsPayment(f"{refunded_fen} + {amount_fen} > {payable_fen}")
    whole = counts and total >= payable_fen and status in REFUNDABLE_ORDER_STATUSES
    return OrderAfterRefund(expected_status=status, expected_refunded_fen=refunded_fen,
                            status="refunded" if whole else status, refunded_fen=total, release_in_flight=releases)


# ------------------------------------------------------------------ asking WeChat again, later

FIRST_ATTEMPT_DELAY = timedelta(minutes=2)  # after the ask made when the refund is created
MAX_BACKOFF = timedelta(hours=6)
ABNORMAL_RECHECK = timedelta(hours=6)  # the merchant is finishing it by hand: look now and then


def next_refund_attempt(attempts: int, abnormal: bool = False) -> timedelta:
    """How long until the retry job asks about a refund again after `attempts` asks: doubling
    from 2 minutes up to 6 hours, so a refund that keeps failing makes room for the others."""
    if abnormal:
        return ABNORMAL_RECHECK
    return min(MAX_BACKOFF, timedelta(minutes=2 ** min(max(attempts, 1), 10)))
