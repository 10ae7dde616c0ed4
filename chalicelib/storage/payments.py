"""Tables `payments` (keyed by WeChat's transaction_id) and `refunds` (keyed by our out_refund_no).

A payment is recorded once, in the same transaction as what it does to the order and stock
(storage/payment_transactions.py); a duplicate notify finds its transaction_id taken and
changes nothing. A refund's out_refund_no is its idempotency key towards WeChat too.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pynamodb.attributes import ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name

# What a recorded payment did: paid the order; paid a closed order by taking stock again;
# or could not be applied (order closed and sold out, or paid twice) and is refunded in full.
APPLIED, REVIVED, REFUNDING = "applied", "revived", "refunding"


class RefundsByOrder(GlobalSecondaryIndex):
    """An order's refunds, for its admin view (never to decide money: eventually consistent)."""
    class Meta:
        index_name = "refunds_by_order"
        projection = AllProjection()

    order_id = UnicodeAttribute(hash_key=True)


# A refund's life: processing -> success | failed (WeChat closed it; the money never moved);
# processing -> abnormal (WeChat could not pay it out: the merchant finishes it by hand, and a
# SUCCESS or CLOSED may still come) -> success | failed; processing -> stuck (our asks kept
# failing: alerted, the merchant retries it) -> processing.
PROCESSING, SUCCESS, FAILED, ABNORMAL, STUCK = "processing", "success", "failed", "abnormal", "stuck"
UNFINISHED = (PROCESSING, ABNORMAL, STUCK)  # WeChat may still report a result for these
DUE = "due"  # the retry job's queue (in the refunds_due index)
SALES_DUE = "sales"  # the sales job's queue: a completed refund whose units come off the sales counts


class RefundsDue(GlobalSecondaryIndex):
    """Sparse: only refunds a job should look at carry `due` (DUE: the retry job asks WeChat
    again; SALES_DUE: the sales job takes its units off the sales counts), by next attempt.
    Keys only: the jobs re-read each item (consistently) before they act."""
    class Meta:
        index_name = "refunds_due"
        projection = KeysOnlyProjection()

    due = UnicodeAttribute(hash_key=True)
    next_attempt_at = UTCDateTimeAttribute(range_key=True)


class PaymentRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("payments")

    transaction_id = UnicodeAttribute(hash_key=True)
    order_id = UnicodeAttribute()
    amount_fen = NumberAttribute()
    paid_at = UTCDateTimeAttribute()
    channel = UnicodeAttribute()  # "v2" or "v3"
    outcome = UnicodeAttribute()
    recorded_at = UTCDateTimeAttribute()
    # No index by order: a payment is put on the paying notify, and an index copy would cost a
    # write there. An order's payments are its own transaction_id plus those its refunds name.


class RefundLineAttribute(MapAttribute):
    sku_id = UnicodeAttribute()
    quantity = NumberAttribute()


class RefundRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("refunds")

    out_refund_no = UnicodeAttribute(hash_key=True)
    order_id = UnicodeAttribute()
    transaction_id = UnicodeAttribute()
    amount_fen = NumberAttribute()
    status = UnicodeAttribute()  # PROCESSING, SUCCESS, FAILED, ABNORMAL, STUCK
    reason = UnicodeAttribute()
    refund_id = UnicodeAttribute(null=True)  # WeChat's id, once it has one
    request_id = UnicodeAttribute(null=True)  # the after-sales request, if any
    lines = ListAttribute(of=RefundLineAttribute, default=list)  # units to restock if unshipped
    restock = UnicodeAttribute(default="no")  # "no", "pending", "done": restocked once
    created_at = UTCDateTimeAttribute()
    completed_at = UTCDateTimeAttribute(null=True)
    attempts = NumberAttribute(default=0)  # times the retry job asked WeChat
    failures = NumberAttribute(default=0)  # of those, failed in a row (-> stuck at a limit)
    due = UnicodeAttribute(null=True)  # DUE or SALES_DUE while a job should look at it (index key)
    next_attempt_at = UTCDateTimeAttribute(null=True)

    by_order = RefundsByOrder()
    due_index = RefundsDue()


@dataclass(frozen=True)
class Payment:
    transaction_id: str
    order_id: str
    amount_fen: int
    paid_at: datetime
    channel: str
    outcome: str


@dataclass(frozen=True)
class Refund:
    out_refund_no: str
    order_id: str
    transaction_id: str
    amount_fen: int
    status: str
    reason: str
    refund_id: str | None
    request_id: str | None
    lines: tuple[tuple[str, int], ...]
    restock: str
    created_at: datetime
    completed_at: datetime | None
    next_attempt_at: datetime | None = None
    attempts: int = 0
    failures: int = 0


def payment_record(payment: Payment, now: datetime) -> PaymentRecord:
    return PaymentRecord(payment.transaction_id, order_id=payment.order_id, amount_fen=payment.amount_fen,
                         paid_at=payment.paid_at, channel=payment.channel, outcome=payment.outcome, recorded_at=now)


def refund_record(refund: Refund) -> RefundRecord:
    return RefundRecord(refund.out_refund_no, order_id=refund.order_id, transaction_id=refund.transaction_id,
                        amount_fen=refund.amount_fen, status=refund.status, reason=refund.reason,
                        refund_id=refund.refund_id, request_id=refund.request_id,
                        lines=[RefundLineAttribute(sku_id=sku, quantity=qty) for sku, qty in refund.lines],
                        restock=refund.restock, created_at=refund.created_at, completed_at=refund.completed_at,
                        attempts=refund.attempts, failures=refund.failures,
                        due=DUE if refund.next_attempt_at else None, next_attempt_at=refund.next_attempt_at)


def _to_payment(record: PaymentRecord) -> Payment:
    return Payment(transaction_id=record.transaction_id, order_id=record.order_id, amount_fen=int(record.amount_fen),
                   paid_at=record.paid_at, channel=record.channel, outcome=record.outcome)


def _to_refund(record: RefundRecord) -> Refund:
    return Refund(out_refund_no=record.out_refund_no, order_id=record.order_id, transaction_id=record.transaction_id,
                  amount_fen=int(record.amount_fen), status=record.status, reason=record.reason,
                  refund_id=record.refund_id, request_id=record.request_id,
                  lines=tuple((line.sku_id, int(line.quantity)) for line in record.lines or []),
                  restock=record.restock, created_at=record.created_at, completed_at=record.completed_at,
                  next_attempt_at=record.next_attempt_at if record.due else None,
                  attempts=int(record.attempts or 0), failures=int(record.failures or 0))


def get_payment(transaction_id: str) -> Payment | None:
    try:
        return _to_payment(PaymentRecord.get(transaction_id, consistent_read=True))
    except PaymentRecord.DoesNotExist:
        return None


def payments_of_order(order_id: str, transaction_id: str | None, refunds: list[Refund]) -> list[Payment]:
    """The payments recorded for an order: the one applied to it (`transaction_id`) and any that
    could not be (a late payment of a closed order, a second payment), each of which is recorded
    with its full refund. For views; money is decided from the items themselves."""
    ids = list(dict.fromkeys([*([transaction_id] if transaction_id else []), *(r.transaction_id for r in refunds)]))
    if not ids:
        return []
    found = [_to_payment(record) for record in PaymentRecord.batch_get(ids, consistent_read=True)]
    return sorted((payment for payment in found if payment.order_id == order_id), key=lambda p: p.paid_at)


def get_refund(out_refund_no: str) -> Refund | None:
    try:
        return _to_refund(RefundRecord.get(out_refund_no, consistent_read=True))
    except RefundRecord.DoesNotExist:
        return None


def refunds_of_order(order_id: str) -> list[Refund]:
    return sorted((_to_refund(r) for r in RefundRecord.by_order.query(order_id)), key=lambda r: r.created_at)


def create_refund(refund: Refund) -> bool:
    """Record a refund we are about to ask WeChat for; False if that out_refund_no exists."""
    try:
        with condition_failure_as(ConditionFailed):
            refund_record(refund).save(condition=RefundRecord.out_refund_no.does_not_exist())
    except ConditionFailed:
        return False
    return True


def due_refund_numbers(now: datetime, limit: int, queue: str = DUE) -> list[str]:
    """out_refund_nos in `queue` whose next attempt is due, oldest first (an index read: re-read each)."""
    return [record.out_refund_no for record in
            RefundRecord.due_index.query(queue, RefundRecord.next_attempt_at <= now, limit=limit)]
