"""Tables `commission_accounts`, `commission_ledger`, `commissions` and `commission_rates`.

- `commission_accounts`, one item per distributor: the five figures of domain/commissions.py as
  top-level numbers, moved only by ADD in the transaction that appends the ledger entry saying so
  (so each figure == the sum of the entries' deltas); a withdrawal's move is conditioned on
  `available_fen >= amount`, nothing else is (a clawback may take `available_fen` below zero).
- `commission_ledger`, append-only, keyed by the business event (`earn#<order>#<level>`,
  `settle#..`, `claw#<out_refund_no>#<level>`, `withdraw#<withdrawal_id>`, ...) and put with
  `attribute_not_exists`: the same event can never be counted twice. Local index `by_at`
  lists an account's entries newest first.
- `commissions`, one item per (order, level): the beneficiary, the per-line commissions with
  their refunded units, the refunds already clawed back (`refunds`, a set) and a status
  (`frozen`, `available`, `shared`, `void`; `shared` also from void or available when the split
  paid a commission clawed back after it was planned). Every change of it is conditioned on what was read
  (status and clawed total), in the same transaction as its entry and account change. Sparse
  index `by_settle` (settle_due, settle_at): only frozen commissions of completed orders carry
  it, so the settle sweep Queries the due ones.
- `commission_rates`, one item per product with its own rates (others use the store's default).
"""
from __future__ import annotations

import functools
import random
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, TypeVar

from pynamodb.attributes import (ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute,
                                 UnicodeSetAttribute, UTCDateTimeAttribute)
from pynamodb.exceptions import TransactWriteError
from pynamodb.indexes import AllProjection, LocalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.domain.commissions import FIGURES, LineCommission, Rate, deltas
from chalicelib.storage.base import (ConditionFailed, KeysOnlyIndex, TableMeta, response_code, table_name,
                                     update_if)

SETTLE_DUE = "due"
T = TypeVar("T")


class CommissionAccountRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("commission_accounts")

    user_id = UnicodeAttribute(hash_key=True)
    frozen_fen = NumberAttribute(default=0)
    available_fen = NumberAttribute(default=0)
    pending_fen = NumberAttribute(default=0)
    withdrawn_fen = NumberAttribute(default=0)
    clawed_back_fen = NumberAttribute(default=0)


class ByAt(LocalSecondaryIndex):
    class Meta:
        index_name = "by_at"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    at_ms = NumberAttribute(range_key=True)


class CommissionEntryRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("commission_ledger")

    user_id = UnicodeAttribute(hash_key=True)
    entry_key = UnicodeAttribute(range_key=True)
    at_ms = NumberAttribute()
    kind = UnicodeAttribute()
    amount_fen = NumberAttribute()
    ref = UnicodeAttribute()  # the order or the withdrawal
    level = NumberAttribute(null=True)

    by_at = ByAt()


class BySettle(KeysOnlyIndex):
    class Meta(KeysOnlyIndex.Meta):
        index_name = "by_settle"

    settle_due = UnicodeAttribute(hash_key=True)
    settle_at = UTCDateTimeAttribute(range_key=True)


class LineAttribute(MapAttribute):
    sku_id = UnicodeAttribute()
    product_id = UnicodeAttribute()
    quantity = NumberAttribute()
    base_fen = NumberAttribute()
    permille = NumberAttribute()
    commission_fen = NumberAttribute()
    refunded_units = NumberAttribute(default=0)
    clawed_fen = NumberAttribute(default=0)


class OrderCommissionRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("commissions")

    order_id = UnicodeAttribute(hash_key=True)
    level = NumberAttribute(range_key=True)
    beneficiary_id = UnicodeAttribute()
    buyer_id = UnicodeAttribute()
    status = UnicodeAttribute()  # frozen | available | shared | void
    commission_fen = NumberAttribute()
    clawed_fen = NumberAttribute(default=0)
    lines = ListAttribute(of=LineAttribute)
    refunds = UnicodeSetAttribute(null=True)  # out_refund_nos clawed back
    created_at = UTCDateTimeAttribute()
    settle_due = UnicodeAttribute(null=True)
    settle_at = UTCDateTimeAttribute(null=True)

    by_settle = BySettle()


class CommissionRateRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("commission_rates")

    product_id = UnicodeAttribute(hash_key=True)
    level1_permille = NumberAttribute()
    level2_permille = NumberAttribute()
    updated_at = UTCDateTimeAttribute()


@dataclass(frozen=True)
class Commission:
    order_id: str
    level: int
    beneficiary_id: str
    buyer_id: str
    status: str
    commission_fen: int
    clawed_fen: int
    lines: tuple[LineCommission, ...]
    refunds: frozenset[str]
    created_at: datetime
    settle_at: datetime | None = None

    @property
    def remaining_fen(self) -> int:
        return self.commission_fen - self.clawed_fen


@dataclass(frozen=True)
class Entry:
    user_id: str
    entry_key: str
    kind: str
    amount_fen: int
    ref: str
    at: datetime
    level: int | None = None


def _commission(record: OrderCommissionRecord) -> Commission:
    return Commission(order_id=record.order_id, level=int(record.level), beneficiary_id=record.beneficiary_id,
                      buyer_id=record.buyer_id, status=record.status, commission_fen=int(record.commission_fen),
                      clawed_fen=int(record.clawed_fen or 0),
                      lines=tuple(LineCommission(sku_id=l.sku_id, product_id=l.product_id, quantity=int(l.quantity),
                                                 base_fen=int(l.base_fen), permille=int(l.permille),
                                                 commission_fen=int(l.commission_fen),
                                                 refunded_units=int(l.refunded_units or 0),
                                                 clawed_fen=int(l.clawed_fen or 0)) for l in record.lines),
                      refunds=frozenset(record.refunds or ()), created_at=record.created_at,
                      settle_at=record.settle_at)


def _lines(lines: tuple[LineCommission, ...]) -> list[LineAttribute]:
    return [LineAttribute(**asdict(line)) for line in lines]


# ---------------------------------------------------------------------------- reads

def commissions_of_order(order_id: str) -> list[Commission]:
    return [_commission(r) for r in OrderCommissionRecord.query(order_id, consistent_read=True)]


def get_commission(order_id: str, level: int) -> Commission | None:
    try:
        return _commission(OrderCommissionRecord.get(order_id, level, consistent_read=True))
    except OrderCommissionRecord.DoesNotExist:
        return None


def due_order_ids(now: datetime, limit: int) -> list[str]:
    """Orders with a frozen commission due to settle (an eventually consistent index: re-read)."""
    seen: list[str] = []
    for record in OrderCommissionRecord.by_settle.query(SETTLE_DUE, OrderCommissionRecord.settle_at <= now,
                                                        limit=limit):
        if record.order_id not in seen:
            seen.append(record.order_id)
    return seen


def get_account(user_id: str) -> dict[str, int]:
    try:
        record = CommissionAccountRecord.get(user_id, consistent_read=True)
    except CommissionAccountRecord.DoesNotExist:
        return dict.fromkeys(FIGURES, 0)
    return {figure: int(getattr(record, figure) or 0) for figure in FIGURES}


def _entry(r: CommissionEntryRecord) -> Entry:
    return Entry(r.user_id, r.entry_key, r.kind, int(r.amount_fen), r.ref,
                 datetime.fromtimestamp(r.at_ms / 1000, timezone.utc), int(r.level) if r.level else None)


def entries(user_id: str, limit: int, cursor: dict[str, Any] | None = None) -> tuple[list[Entry], dict | None]:
    """An account's entries newest first, and where the next page starts."""
    query = CommissionEntryRecord.by_at.query(user_id, scan_index_forward=False, limit=limit, consistent_read=True,
                                              last_evaluated_key=cursor)
    page = [_entry(r) for r in query]
    return page, query.last_evaluated_key


def all_entries(user_id: str) -> list[Entry]:
    return [_entry(r) for r in CommissionEntryRecord.query(user_id, consistent_read=True)]


def get_rates(product_ids: list[str]) -> dict[str, Rate]:
    if not product_ids:
        return {}
    return {r.product_id: Rate(int(r.level1_permille), int(r.level2_permille))
            for r in CommissionRateRecord.batch_get(sorted(set(product_ids)))}


def put_rate(product_id: str, rate: Rate, now: datetime) -> None:
    CommissionRateRecord(product_id, level1_permille=rate.level1_permille, level2_permille=rate.level2_permille,
                         updated_at=now).save()


# ---------------------------------------------------------------------------- writes

class Contended(Exception):
    """Another transaction held one of the items (a distributor's account is shared by all their
    orders): nothing was written; tried again a few times before this is raised."""


CONTENDED_ATTEMPTS = 6


@contextmanager
def _transaction() -> Iterator[TransactWrite]:
    """Raises ConditionFailed when a condition failed (the caller reads again and decides again),
    Contended when it only collided with another transaction."""
    connection = OrderCommissionRecord._get_connection().connection
    try:
        with TransactWrite(connection=connection, client_request_token=str(uuid.uuid4())) as transaction:
            yield transaction
    except TransactWriteError as error:
        reasons = {reason.code for reason in error.cancellation_reasons or [] if reason is not None}
        if "ConditionalCheckFailed" in reasons:
            raise ConditionFailed(str(error)) from error
        if response_code(error) == "TransactionCanceledException":
            raise Contended(str(error)) from error
        raise


def retry_contended(write: Callable[..., T]) -> Callable[..., T]:
    """Run a transaction function again (same arguments: the same decision) when it only collided."""
    @functools.wraps(write)
    def retried(*args: Any, **kwargs: Any) -> T:
        for attempt in range(CONTENDED_ATTEMPTS):
            try:
                return write(*args, **kwargs)
            except Contended:
                if attempt == CONTENDED_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0, 0.01 * 2 ** attempt))
        raise AssertionError("unreachable")
    return retried


def add_entry(transaction: TransactWrite, entry: Entry, condition=None) -> None:
    """The entry (never twice) and its account's ADDs; `condition` on the account, if any."""
    transaction.save(CommissionEntryRecord(entry.user_id, entry.entry_key, at_ms=int(entry.at.timestamp() * 1000),
                                           kind=entry.kind, amount_fen=entry.amount_fen, ref=entry.ref,
                                           level=entry.level),
                     condition=CommissionEntryRecord.entry_key.does_not_exist())
    moves = deltas(entry.kind, entry.amount_fen)
    actions = [getattr(CommissionAccountRecord, figure).add(delta) for figure, delta in moves.items()]
    transaction.update(CommissionAccountRecord(entry.user_id), actions=actions, condition=condition)


@retry_contended
def create_commissions(commissions: list[Commission], now: datetime) -> None:
    """Each (order, level) commission, frozen, with its earn entry. Raises ConditionFailed when
    one exists already (counted before)."""
    with _transaction() as transaction:
        for c in commissions:
            transaction.save(OrderCommissionRecord(c.order_id, c.level, beneficiary_id=c.beneficiary_id,
                                                   buyer_id=c.buyer_id, status="frozen",
                                                   commission_fen=c.commission_fen, clawed_fen=0,
                                                   lines=_lines(c.lines), created_at=now),
                             condition=OrderCommissionRecord.order_id.does_not_exist())
            if c.commission_fen:
                add_entry(transaction, Entry(c.beneficiary_id, f"earn#{c.order_id}#{c.level}", "earn",
                                             c.commission_fen, c.order_id, now, c.level))


def _as_read(c: Commission):
    return (OrderCommissionRecord.status == c.status) & (OrderCommissionRecord.clawed_fen == c.clawed_fen)


@retry_contended
def claw_back(c: Commission, out_refund_no: str, lines: tuple[LineCommission, ...], taken: int, now: datetime) -> None:
    """Record the refund on the commission (once: not yet in `refunds`, status and total as read),
    with its clawback entry from frozen or available. Raises ConditionFailed."""
    clawed = c.clawed_fen + taken
    actions = [OrderCommissionRecord.clawed_fen.set(clawed), OrderCommissionRecord.lines.set(_lines(lines)),
               OrderCommissionRecord.refunds.add({out_refund_no})]
    if c.status == "frozen" and clawed >= c.commission_fen:
        actions += [OrderCommissionRecord.status.set("void"), OrderCommissionRecord.settle_due.remove()]
    condition = _as_read(c) & ~OrderCommissionRecord.refunds.contains(out_refund_no)
    with _transaction() as transaction:
        transaction.update(OrderCommissionRecord(c.order_id, c.level), actions=actions, condition=condition)
        if taken:
            kind = "clawback_frozen" if c.status == "frozen" else "clawback_available"
            add_entry(transaction, Entry(c.beneficiary_id, f"claw#{out_refund_no}#{c.level}", kind, taken,
                                         c.order_id, now, c.level))


def schedule_settlement(c: Commission, settle_at: datetime) -> bool:
    """A frozen commission of a completed order waits for `settle_at` (set once)."""
    return update_if(OrderCommissionRecord(c.order_id, c.level),
                     [OrderCommissionRecord.settle_due.set(SETTLE_DUE), OrderCommissionRecord.settle_at.set(settle_at)],
                     (OrderCommissionRecord.status == "frozen") & OrderCommissionRecord.settle_at.does_not_exist())


@retry_contended
def settle(c: Commission, kind: str, now: datetime, amount_fen: int | None = None) -> None:
    """frozen -> available (kind settle), or -> shared (kind shared: `amount_fen` was paid by profit
    sharing; from frozen, `shared`, as far as the commission's frozen remainder goes, the rest
    `shared_debt` from available: a commission clawed back, even void or settled, after the split
    was planned). Raises ConditionFailed (moved meanwhile)."""
    status = "available" if kind == "settle" else "shared"
    amount = c.remaining_fen if amount_fen is None else amount_fen
    moves = [(kind, amount)]
    if kind == "shared":
        from_frozen = min(amount, max(c.remaining_fen, 0)) if c.status == "frozen" else 0
        moves = [("shared", from_frozen), ("shared_debt", amount - from_frozen)]
    with _transaction() as transaction:
        transaction.update(OrderCommissionRecord(c.order_id, c.level),
                           actions=[OrderCommissionRecord.status.set(status),
                                    OrderCommissionRecord.settle_due.remove()],
                           condition=_as_read(c))
        for entry_kind, entry_fen in moves:
            if entry_fen > 0:
                add_entry(transaction, Entry(c.beneficiary_id, f"{entry_kind}#{c.order_id}#{c.level}", entry_kind,
                                             entry_fen, c.order_id, now, c.level))
