"""Tables `after_sales` (one item per refund/return request) and `after_sales_claims` (one item
per order: the units and fen that its live requests hold).

A request CLAIMS its units when it is made: the request put and the order's claims item are one
TransactWrite, the claims write conditioned on the version that was read (and the order on the
status it was read in). Two requests racing for the same units cannot both commit: the loser's
transaction is cancelled, it reads the claims again and finds the units taken. Every status but
`rejected` holds its claims ("live"); rejecting releases them in the same transaction as the
status change.

Approving a refund is one TransactWrite too: the request moves to `refunding` and the refund
record is put, so a refund record exists exactly when its request was approved, whatever crashes
between the approval and the call to WeChat (the refund retry job picks up what is left
`processing`). Approving a return only moves it to `approved` (the buyer sends the goods back and
gives the tracking number); the merchant marking the goods received is the TransactWrite that
restocks them (reason `return`, one stock movement per line), moves the request to `refunding`
and puts the refund record: no money leaves before the goods are back, and goods come back to
stock exactly once with their refund.

Indexes: `by_status` (status, created_at) and `all_by_time` ("all", created_at), for the
merchant's list newest first, filtered or not; `by_deadline` (deadline_kind, deadline_at), sparse
and keys-only: only a request whose SLA clock runs carries it (`respond`: the merchant must answer
a new request; `review`: the merchant must receive or reject goods the buyer sent back), set and
cleared by the same writes that start and stop the clock, so the SLA sweep Queries the due ones.
"""
from __future__ import annotations

import secrets
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator

from pynamodb.attributes import ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.storage.base import (ConditionFailed, FullCopyIndex, KeysOnlyIndex, TableMeta, condition_failure_as,
                                     response_code, table_name, update_if)
from chalicelib.storage.orders import OrderRecord
from chalicelib.storage.payments import Refund, RefundRecord, refund_record

REQUESTED, APPROVED, REJECTED, REFUNDING, REFUNDED = "requested", "approved", "rejected", "refunding", "refunded"
EXCHANGING, EXCHANGED, DISPUTED = "exchanging", "exchanged", "disputed"
GOODS_COME_BACK = ("return", "exchange")  # the kinds whose goods are sent back before anything else
ALL_REQUESTS = "all"
# Cancellation reasons a fresh read and another attempt can resolve.
_RETRYABLE = {"ConditionalCheckFailed", "TransactionConflict"}



class ByStatus(FullCopyIndex):
    class Meta(FullCopyIndex.Meta):
        index_name = "by_status"

    status = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class AllByTime(FullCopyIndex):
    """One partition: a store's after-sales rate is far below a partition's ~1,000 writes/s."""
    class Meta(FullCopyIndex.Meta):
        index_name = "all_by_time"

    all_requests = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class ByDeadline(KeysOnlyIndex):
    class Meta(KeysOnlyIndex.Meta):
        index_name = "by_deadline"

    deadline_kind = UnicodeAttribute(hash_key=True)
    deadline_at = UTCDateTimeAttribute(range_key=True)


RESPOND, REVIEW = "respond", "review"  # the SLA clocks


class RequestLineAttribute(MapAttribute):
    sku_id = UnicodeAttribute()
    quantity = NumberAttribute()
    amount_fen = NumberAttribute()


class AfterSaleRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("after_sales")

    request_id = UnicodeAttribute(hash_key=True)
    order_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    kind = UnicodeAttribute()  # "refund" (unshipped), "return" (shipped goods, refunded) or "exchange"
    reason = UnicodeAttribute()
    status = UnicodeAttribute()
    lines = ListAttribute(of=RequestLineAttribute, default=list)
    delivery_fee_fen = NumberAttribute(default=0)
    amount_fen = NumberAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    attempt = NumberAttribute(default=0)  # refunds asked for so far (a failed one may be approved again)
    out_refund_no = UnicodeAttribute(null=True)  # the current refund
    note = UnicodeAttribute(null=True)  # why it was rejected, or why its refund failed
    return_shipment = MapAttribute(null=True)  # a return's {carrier, tracking_no, submitted_at}, from the buyer
    received_at = UTCDateTimeAttribute(null=True)  # a return's goods marked received (and restocked)
    deadline_kind = UnicodeAttribute(null=True)  # the running SLA clock (RESPOND, REVIEW), if any
    deadline_at = UTCDateTimeAttribute(null=True)
    escalations = ListAttribute(null=True)  # the SLA clocks that ran out, e.g. ["respond"]
    replacement_shipment = MapAttribute(null=True)  # an exchange's {carrier, tracking_no, shipped_at}
    dispute_reason = UnicodeAttribute(null=True)  # the buyer contested the rejection (once)
    all_requests = UnicodeAttribute(default=ALL_REQUESTS)

    by_status = ByStatus()
    all_by_time = AllByTime()
    by_deadline = ByDeadline()


class ClaimLineAttribute(MapAttribute):
    sku_id = UnicodeAttribute()
    units = NumberAttribute()
    amount_fen = NumberAttribute()  # what the live requests return for these units


class ClaimsRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("after_sales_claims")

    order_id = UnicodeAttribute(hash_key=True)
    lines = ListAttribute(of=ClaimLineAttribute, default=list)
    delivery_fee_fen = NumberAttribute(default=0)  # the fee, once a live request carries it
    version = NumberAttribute()


@dataclass(frozen=True)
class RequestLine:
    sku_id: str
    quantity: int
    amount_fen: int


@dataclass(frozen=True)
class AfterSale:
    request_id: str
    order_id: str
    user_id: str
    kind: str
    reason: str
    status: str
    lines: tuple[RequestLine, ...]
    delivery_fee_fen: int
    amount_fen: int
    created_at: datetime
    updated_at: datetime
    attempt: int = 0
    out_refund_no: str | None = None
    note: str | None = None
    return_shipment: dict[str, str] | None = None
    received_at: datetime | None = None
    deadline: tuple[str, datetime] | None = None  # the running SLA clock: (kind, due at)
    escalations: tuple[str, ...] = ()
    replacement_shipment: dict[str, str] | None = None
    dispute_reason: str | None = None


@dataclass(frozen=True)
class Claims:
    """What an order's live requests hold: sku_id -> units and -> fen, and the delivery fee."""
    order_id: str
    version: int = 0  # 0: no claims item yet
    units: dict[str, int] = field(default_factory=dict)
    amounts: dict[str, int] = field(default_factory=dict)
    delivery_fee_fen: int = 0


class Contended(Exception):
    """The write lost to a concurrent one (or the state it was based on moved): read again."""


def new_request_id() -> str:
    return secrets.token_hex(12)  # 24 characters: "AS" + id is a valid out_refund_no


def _to_request(record: AfterSaleRecord) -> AfterSale:
    return AfterSale(
        request_id=record.request_id, order_id=record.order_id, user_id=record.user_id, kind=record.kind,
        reason=record.reason, status=record.status,
        lines=tuple(RequestLine(line.sku_id, int(line.quantity), int(line.amount_fen)) for line in record.lines or []),
        delivery_fee_fen=int(record.delivery_fee_fen or 0), amount_fen=int(record.amount_fen),
        created_at=record.created_at, updated_at=record.updated_at, attempt=int(record.attempt or 0),
        out_refund_no=record.out_refund_no, note=record.note,
        return_shipment=record.return_shipment.as_dict() if record.return_shipment else None,
        received_at=record.received_at,
        deadline=(record.deadline_kind, record.deadline_at) if record.deadline_kind and record.deadline_at else None,
        escalations=tuple(record.escalations or ()),
        replacement_shipment=record.replacement_shipment.as_dict() if record.replacement_shipment else None,
        dispute_reason=record.dispute_reason)


def _to_record(request: AfterSale) -> AfterSaleRecord:
    return AfterSaleRecord(
        request.request_id, order_id=request.order_id, user_id=request.user_id, kind=request.kind,
        reason=request.reason, status=request.status,
        lines=[RequestLineAttribute(sku_id=line.sku_id, quantity=line.quantity, amount_fen=line.amount_fen)
               for line in request.lines],
        delivery_fee_fen=request.delivery_fee_fen, amount_fen=request.amount_fen, created_at=request.created_at,
        updated_at=request.updated_at, attempt=request.attempt, out_refund_no=request.out_refund_no,
        note=request.note, return_shipment=request.return_shipment, received_at=request.received_at,
        deadline_kind=request.deadline[0] if request.deadline else None,
        deadline_at=request.deadline[1] if request.deadline else None, escalations=list(request.escalations) or None,
        replacement_shipment=request.replacement_shipment, dispute_reason=request.dispute_reason)


def get_request(request_id: str) -> AfterSale | None:
    try:
        return _to_request(AfterSaleRecord.get(request_id, consistent_read=True))
    except AfterSaleRecord.DoesNotExist:
        return None


def get_claims(order_id: str) -> Claims:
    try:
        record = ClaimsRecord.get(order_id, consistent_read=True)
    except ClaimsRecord.DoesNotExist:
        return Claims(order_id)
    return Claims(order_id, version=int(record.version),
                  units={line.sku_id: int(line.units) for line in record.lines or []},
                  amounts={line.sku_id: int(line.amount_fen) for line in record.lines or []},
                  delivery_fee_fen=int(record.delivery_fee_fen or 0))


def list_requests(status: str | None, limit: int,
                  cursor: dict[str, Any] | None) -> tuple[list[AfterSale], dict[str, Any] | None]:
    """Requests newest first, by status or all."""
    index, partition = (AfterSaleRecord.by_status, status) if status else (AfterSaleRecord.all_by_time, ALL_REQUESTS)
    results = index.query(partition, scan_index_forward=False, limit=limit, last_evaluated_key=cursor)
    page = [_to_request(record) for record in results]
    return page, results.last_evaluated_key


def create_request(request: AfterSale, order_status: str, held: Claims, after: Claims, *,
                   ship_version: int | None = None) -> None:
    """Put the request and replace the order's claims `held` by `after`, all or nothing, while
    the order is still `order_status` (and, given `ship_version`, has shipped no package since it
    was read: storage/order_ops.py). Raises Contended when anything moved since it was read."""
    order_as_read = OrderRecord.status == order_status
    if ship_version is not None:
        order_as_read &= (OrderRecord.ship_version == ship_version) if ship_version \
            else OrderRecord.ship_version.does_not_exist()
    with _transaction() as transaction:
        transaction.condition_check(OrderRecord, request.order_id, condition=order_as_read)
        transaction.save(_to_record(request), condition=AfterSaleRecord.request_id.does_not_exist())
        transaction.save(*_claims_write(held, after))


def start_refund(request: AfterSale, refund: Refund, order_status: str, now: datetime) -> None:
    """requested/approved -> refunding with the refund record put, all or nothing (conditions: the
    request is as read, the out_refund_no is new, the order is still `order_status`). A refund of
    unshipped units is marked in flight on the order in the same transaction: shipping is refused
    until it ends, so goods are never both shipped and refunded as unshipped."""
    with _transaction() as transaction:
        order_is_as_read = OrderRecord.status == order_status
        if refund.restock == "pending":  # a refund of unshipped units: the order waits for it to ship
            transaction.update(OrderRecord(request.order_id),
                               actions=[OrderRecord.refunds_in_flight.add({refund.out_refund_no})],
                               condition=order_is_as_read)
        else:
            transaction.condition_check(OrderRecord, request.order_id, condition=order_is_as_read)
        transaction.update(
            AfterSaleRecord(request.request_id),
            actions=[AfterSaleRecord.status.set(REFUNDING), AfterSaleRecord.attempt.set(request.attempt + 1),
                     AfterSaleRecord.out_refund_no.set(refund.out_refund_no), AfterSaleRecord.updated_at.set(now),
                     *_clock_stopped()],
            condition=(AfterSaleRecord.status == request.status) & (AfterSaleRecord.attempt == request.attempt))
        transaction.save(refund_record(refund), condition=RefundRecord.out_refund_no.does_not_exist())


def approve_return(request: AfterSale, now: datetime) -> None:
    """A return or exchange: requested -> approved, waiting for the goods (nothing leaves the store
    yet). Raises Contended."""
    with _transaction() as transaction:
        transaction.update(
            AfterSaleRecord(request.request_id),
            actions=[AfterSaleRecord.status.set(APPROVED), AfterSaleRecord.updated_at.set(now), *_clock_stopped()],
            condition=(AfterSaleRecord.status == REQUESTED) & AfterSaleRecord.kind.is_in(*GOODS_COME_BACK))


def record_return_shipment(request: AfterSale, shipment: dict[str, str], now: datetime, review_by: datetime) -> None:
    """The buyer's tracking number of the goods sent back: while the return is approved and its
    goods not received yet (a corrected number replaces the first, and restarts the REVIEW clock
    the merchant has, due `review_by`). Raises Contended."""
    with _transaction() as transaction:
        transaction.update(
            AfterSaleRecord(request.request_id),
            actions=[AfterSaleRecord.return_shipment.set(shipment), AfterSaleRecord.updated_at.set(now),
                     *_clock_started(REVIEW, review_by)],
            condition=(AfterSaleRecord.status == APPROVED) & AfterSaleRecord.kind.is_in(*GOODS_COME_BACK)
            & AfterSaleRecord.received_at.does_not_exist())


@dataclass(frozen=True)
class Restock:
    """A returned line going back on sale: `available` as read, so the movement records it exactly."""
    sku_id: str
    units: int
    available_before: int


def receive_and_refund(request: AfterSale, refund: Refund, restocks: list[Restock], order_status: str,
                       now: datetime) -> None:
    """The return's goods are back: restock each line (available and stock_in up, a `return`
    movement keyed by the request and SKU), approved -> refunding with received_at, and the refund
    record put, all or nothing (conditions: the request as read and not received before, each
    SKU's available as read, the order still `order_status`). Raises Contended."""
    from chalicelib.storage.skus import SkuRecord
    from chalicelib.storage.stock import StockMovementRecord

    with _transaction() as transaction:
        transaction.condition_check(OrderRecord, request.order_id, condition=OrderRecord.status == order_status)
        transaction.update(
            AfterSaleRecord(request.request_id),
            actions=[AfterSaleRecord.status.set(REFUNDING), AfterSaleRecord.attempt.set(request.attempt + 1),
                     AfterSaleRecord.out_refund_no.set(refund.out_refund_no), AfterSaleRecord.received_at.set(now),
                     AfterSaleRecord.updated_at.set(now), *_clock_stopped()],
            condition=(AfterSaleRecord.status == APPROVED) & (AfterSaleRecord.attempt == request.attempt)
            & (AfterSaleRecord.kind == "return") & AfterSaleRecord.received_at.does_not_exist())
        transaction.save(refund_record(refund), condition=RefundRecord.out_refund_no.does_not_exist())
        for restock in restocks:
            transaction.update(SkuRecord(restock.sku_id),
                               actions=[SkuRecord.available.add(restock.units), SkuRecord.stock_in.add(restock.units)],
                               condition=SkuRecord.available == restock.available_before)
            transaction.save(StockMovementRecord(restock.sku_id, f"return#{request.request_id}", delta=restock.units,
                                                 reason="return", source=f"after-sales {request.request_id}",
                                                 available_before=restock.available_before, created_at=now),
                             condition=StockMovementRecord.movement_key.does_not_exist())


def receive_for_exchange(request: AfterSale, order_status: str, now: datetime) -> None:
    """An exchange's goods are back: the replacement units leave stock (available -> sold: the
    returned ones are not put back on sale, they came back because something was wrong with
    them), approved -> exchanging with received_at, all or nothing (conditions: the request as
    read and not received, each SKU holding the units, the order still `order_status`).
    Raises Contended, or ReplacementShort naming the SKUs without the units."""
    from chalicelib.storage.skus import SkuRecord

    try:
        with TransactWrite(connection=AfterSaleRecord._get_connection().connection,
                           client_request_token=str(uuid.uuid4())) as transaction:
            transaction.condition_check(OrderRecord, request.order_id, condition=OrderRecord.status == order_status)
            transaction.update(
                AfterSaleRecord(request.request_id),
                actions=[AfterSaleRecord.status.set(EXCHANGING), AfterSaleRecord.received_at.set(now),
                         AfterSaleRecord.updated_at.set(now), *_clock_stopped()],
                condition=(AfterSaleRecord.status == APPROVED) & (AfterSaleRecord.kind == "exchange")
                & AfterSaleRecord.received_at.does_not_exist())
            for line in request.lines:
                transaction.update(SkuRecord(line.sku_id),
                                   actions=[SkuRecord.available.add(-line.quantity), SkuRecord.sold.add(line.quantity)],
                                   condition=SkuRecord.available >= line.quantity)
    except TransactWriteError as error:
        reasons = [reason.code if reason else None for reason in error.cancellation_reasons or []]
        short = [line.sku_id for line, code in zip(request.lines, reasons[2:]) if code == "ConditionalCheckFailed"]
        if short and reasons[0] != "ConditionalCheckFailed" and reasons[1] != "ConditionalCheckFailed":
            raise ReplacementShort(short) from None
        if set(reasons) - {None, "None"} <= _RETRYABLE:
            raise Contended() from error
        raise


class ReplacementShort(Exception):
    def __init__(self, sku_ids: list[str]):
        super().__init__(", ".join(sku_ids))
        self.sku_ids = sku_ids


def ship_replacement(request: AfterSale, shipment: dict[str, str], now: datetime) -> None:
    """exchanging -> exchanged with the replacement's shipment. Raises Contended."""
    with _transaction() as transaction:
        transaction.update(
            AfterSaleRecord(request.request_id),
            actions=[AfterSaleRecord.status.set(EXCHANGED), AfterSaleRecord.replacement_shipment.set(shipment),
                     AfterSaleRecord.updated_at.set(now)],
            condition=AfterSaleRecord.status == EXCHANGING)


def dispute(request: AfterSale, reason: str, now: datetime, answer_by: datetime) -> None:
    """The buyer contests the rejection, once: rejected -> disputed, the merchant's RESPOND clock
    started again. Raises Contended."""
    with _transaction() as transaction:
        transaction.update(
            AfterSaleRecord(request.request_id),
            actions=[AfterSaleRecord.status.set(DISPUTED), AfterSaleRecord.dispute_reason.set(reason),
                     AfterSaleRecord.updated_at.set(now), *_clock_started(RESPOND, answer_by)],
            condition=(AfterSaleRecord.status == REJECTED) & AfterSaleRecord.dispute_reason.does_not_exist())


def close_dispute(request: AfterSale, note: str, now: datetime) -> None:
    """The merchant upholds the rejection: disputed -> rejected, final (its units stay released).
    Raises Contended."""
    with _transaction() as transaction:
        transaction.update(
            AfterSaleRecord(request.request_id),
            actions=[AfterSaleRecord.status.set(REJECTED), AfterSaleRecord.note.set(note),
                     AfterSaleRecord.updated_at.set(now), *_clock_stopped()],
            condition=(AfterSaleRecord.status == DISPUTED) & (AfterSaleRecord.attempt == request.attempt))


def reopen_disputed(request: AfterSale, held: Claims, after: Claims, now: datetime) -> None:
    """The merchant gives in to a dispute: disputed -> requested with the request's units claimed
    again (they were released by the rejection), in one transaction; the decision then goes on as
    for a new request. Raises Contended (the units taken meanwhile show on the next read)."""
    with _transaction() as transaction:
        transaction.update(
            AfterSaleRecord(request.request_id),
            actions=[AfterSaleRecord.status.set(REQUESTED), AfterSaleRecord.updated_at.set(now)],
            condition=(AfterSaleRecord.status == DISPUTED) & (AfterSaleRecord.attempt == request.attempt))
        transaction.save(*_claims_write(held, after))


def reject_request(request: AfterSale, note: str, held: Claims, after: Claims, now: datetime) -> None:
    """-> rejected, releasing the request's claims (`held` -> `after`) in the same transaction."""
    with _transaction() as transaction:
        transaction.update(
            AfterSaleRecord(request.request_id),
            actions=[AfterSaleRecord.status.set(REJECTED), AfterSaleRecord.note.set(note),
                     AfterSaleRecord.updated_at.set(now), *_clock_stopped()],
            condition=(AfterSaleRecord.status == request.status) & (AfterSaleRecord.attempt == request.attempt))
        transaction.save(*_claims_write(held, after))


def mark_refunded(request_id: str, out_refund_no: str, now: datetime) -> bool:
    """The refund hook: its refund succeeded, refunding -> refunded. Conditioned on the refund being
    the request's current one, so a repeat (or a stale attempt) changes nothing; False then."""
    return _finish_refund(request_id, out_refund_no, REFUNDED, [AfterSaleRecord.updated_at.set(now)])


def mark_refund_failed(request_id: str, out_refund_no: str, note: str, now: datetime) -> bool:
    """The refund hook: WeChat refused or closed it, refunding -> approved with a note, so the
    merchant can approve again (a new out_refund_no) or reject it (releasing its units)."""
    return _finish_refund(request_id, out_refund_no, APPROVED,
                          [AfterSaleRecord.note.set(note[:200]), AfterSaleRecord.updated_at.set(now)])


def _finish_refund(request_id: str, out_refund_no: str, new: str, actions: list) -> bool:
    try:
        with condition_failure_as(ConditionFailed):
            AfterSaleRecord(request_id).update(
                actions=[AfterSaleRecord.status.set(new), *actions],
                condition=(AfterSaleRecord.status == REFUNDING) & (AfterSaleRecord.out_refund_no == out_refund_no))
    except ConditionFailed:
        return False
    return True


def _clock_started(kind: str, due_at: datetime) -> list:
    return [AfterSaleRecord.deadline_kind.set(kind), AfterSaleRecord.deadline_at.set(due_at)]


def _clock_stopped() -> list:
    return [AfterSaleRecord.deadline_kind.remove(), AfterSaleRecord.deadline_at.remove()]


def due_request_ids(kind: str, now: datetime, limit: int) -> list[str]:
    """Requests whose `kind` SLA clock ran out by `now` (the sparse index: callers re-read each)."""
    return [record.request_id for record in
            AfterSaleRecord.by_deadline.query(kind, AfterSaleRecord.deadline_at <= now, limit=limit)]


def escalate(request: AfterSale, kind: str, now: datetime) -> bool:
    """Stop the request's `kind` clock as run out, once: conditioned on that clock still running
    with the deadline read (a reply, a receipt or another sweep that got there first wins).
    True for the one caller that escalated."""
    assert request.deadline is not None and request.deadline[0] == kind
    return update_if(AfterSaleRecord(request.request_id),
                     [*_clock_stopped(), AfterSaleRecord.escalations.set(
                         AfterSaleRecord.escalations.append([kind]) if request.escalations
                         else [kind]), AfterSaleRecord.updated_at.set(now)],
                     (AfterSaleRecord.deadline_kind == kind) & (AfterSaleRecord.deadline_at == request.deadline[1]))


def _claims_write(held: Claims, after: Claims) -> tuple[ClaimsRecord, Any]:
    """The claims item `after`, put on condition that it is still `held` (its version)."""
    record = ClaimsRecord(
        after.order_id, version=held.version + 1, delivery_fee_fen=after.delivery_fee_fen,
        lines=[ClaimLineAttribute(sku_id=sku_id, units=units, amount_fen=after.amounts.get(sku_id, 0))
               for sku_id, units in sorted(after.units.items())])
    condition = (ClaimsRecord.order_id.does_not_exist() if held.version == 0
                 else ClaimsRecord.version == held.version)
    return record, condition


@contextmanager
def _transaction() -> Iterator[TransactWrite]:
    """A TransactWrite on the model's connection; a cancellation for conditions or a concurrent
    transaction is Contended. The request token makes botocore's own retries idempotent."""
    connection = AfterSaleRecord._get_connection().connection
    try:
        with TransactWrite(connection=connection, client_request_token=str(uuid.uuid4())) as transaction:
            yield transaction
    except TransactWriteError as error:
        reasons = {reason.code for reason in error.cancellation_reasons or [] if reason is not None}
        if response_code(error) == "TransactionCanceledException" and reasons <= _RETRYABLE:
            raise Contended() from error
        raise
