"""A refund's state changes, each one conditional write or transaction.

Completing a refund moves, together: the refund processing|abnormal|stuck -> success, the
order's refunded total (and its status to `refunded` when whole, and its in-flight mark), and
the restock of its unshipped units. The refund's condition makes every repeat of the same
success (notify, query, retry) change nothing; the order's conditions (the status and refunded
total it was read with) make two refunds completing at once add up, never overwrite.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.domain.refunds import OrderAfterRefund
from chalicelib.storage.base import update_if
from chalicelib.storage.orders import OrderRecord
from chalicelib.storage.payments import (ABNORMAL, DUE, FAILED, PROCESSING, SALES_DUE, STUCK, SUCCESS, UNFINISHED,
                                         Refund, RefundRecord)
from chalicelib.storage.skus import SkuRecord
from chalicelib.storage.transactions import ExtraUpdate, failed_indexes, raise_extra_failure


class RefundFinished(Exception):
    """The refund is no longer in the state the change expected (finished, or moved meanwhile)."""


class OrderMoved(Exception):
    """The order's status or refunded total changed since it was read (or another transaction
    held it): read it again."""


def complete_refund(refund: Refund, refund_id: str | None, now: datetime, order: OrderAfterRefund | None,
                    restock: bool, extra_updates: Iterable[ExtraUpdate] = ()) -> None:
    """-> success, with `order`'s change, the restock of the refund's lines when `restock`, and
    the extra updates (a fully refunded order's coupons given back). Raises RefundFinished,
    OrderMoved or an extra update's own failure; nothing is written then."""
    extras = list(extra_updates)
    actions = [RefundRecord.status.set(SUCCESS), RefundRecord.completed_at.set(now)]
    if refund.lines and order is not None and order.refunded_fen > order.expected_refunded_fen:
        # Units that were counted as sold come off the products' sales: queued for the sales job.
        actions += [RefundRecord.due.set(SALES_DUE), RefundRecord.next_attempt_at.set(now)]
    else:
        actions += _leave_retry_queue()
    if refund_id:
        actions.append(RefundRecord.refund_id.set(refund_id))
    if refund.restock == "pending":
        actions.append(RefundRecord.restock.set("done" if restock else "skipped_shipped"))
    try:
        with TransactWrite(connection=RefundRecord._get_connection().connection) as transaction:
            transaction.update(RefundRecord(refund.out_refund_no), actions=actions,
                               condition=RefundRecord.status.is_in(*UNFINISHED))
            if order is not None:
                transaction.update(OrderRecord(refund.order_id), actions=_order_actions(refund, order),
                                   condition=_order_as_read(order))
            for sku_id, units in refund.lines if restock else ():
                transaction.update(SkuRecord(sku_id),
                                   actions=[SkuRecord.sold.add(-units), SkuRecord.available.add(units)],
                                   condition=SkuRecord.sold >= units)
            for extra in extras:  # raw DynamoDB updates (PynamoDB has no public way in), sent last
                transaction._update_items.append(extra.update)
    except TransactWriteError as error:
        first_extra = 1 + (order is not None) + (len(refund.lines) if restock else 0)
        raise_extra_failure(failed_indexes(error), first_extra, extras)
        _raise_condition_failure(error, order_index=1 if order is not None else None)
        raise


def close_refund(refund: Refund, refund_id: str | None, now: datetime, release_in_flight: bool) -> None:
    """-> failed (WeChat closed it: no money moved), and the order may ship again. Raises
    RefundFinished when it was no longer unfinished."""
    actions = [RefundRecord.status.set(FAILED), RefundRecord.completed_at.set(now), *_leave_retry_queue()]
    if refund_id:
        actions.append(RefundRecord.refund_id.set(refund_id))
    try:
        with TransactWrite(connection=RefundRecord._get_connection().connection) as transaction:
            transaction.update(RefundRecord(refund.out_refund_no), actions=actions,
                               condition=RefundRecord.status.is_in(*UNFINISHED))
            if release_in_flight:
                transaction.update(OrderRecord(refund.order_id),
                                   actions=[OrderRecord.refunds_in_flight.delete({refund.out_refund_no})],
                                   condition=OrderRecord.order_id.exists())
    except TransactWriteError as error:
        _raise_condition_failure(error, order_index=None)
        raise


def mark_abnormal(refund: Refund, refund_id: str | None, next_attempt_at: datetime) -> bool:
    """processing|stuck -> abnormal (looked at again at `next_attempt_at`); False if it was not."""
    actions = [RefundRecord.status.set(ABNORMAL), RefundRecord.due.set(DUE),
               RefundRecord.next_attempt_at.set(next_attempt_at)]
    if refund_id:
        actions.append(RefundRecord.refund_id.set(refund_id))
    return _update_if(refund.out_refund_no, actions, RefundRecord.status.is_in(PROCESSING, STUCK))


def record_attempt(refund: Refund, failed: bool, next_attempt_at: datetime, stuck: bool) -> bool:
    """The retry job asked WeChat once more: count it and set the next attempt, or (`stuck`) take
    the refund off the queue. Conditioned on the refund being as read, so two job runs racing on
    one refund count one attempt; False for the loser."""
    actions = [RefundRecord.attempts.set(refund.attempts + 1),
               RefundRecord.failures.set(refund.failures + 1 if failed else 0)]
    if stuck:
        actions += [RefundRecord.status.set(STUCK), *_leave_retry_queue()]
    else:
        actions += [RefundRecord.due.set(DUE), RefundRecord.next_attempt_at.set(next_attempt_at)]
    condition = (RefundRecord.status == refund.status) & (RefundRecord.attempts == refund.attempts)
    return _update_if(refund.out_refund_no, actions, condition)


def retry_stuck(out_refund_no: str, now: datetime) -> bool:
    """stuck -> processing, due now, with its failures forgiven (the merchant fixed the cause)."""
    return _update_if(out_refund_no, [RefundRecord.status.set(PROCESSING), RefundRecord.failures.set(0),
                                      RefundRecord.due.set(DUE), RefundRecord.next_attempt_at.set(now)],
                      RefundRecord.status == STUCK)


def sales_corrected(out_refund_no: str) -> bool:
    """The sales job took this refund's units off the products' sales: it leaves the queue."""
    return _update_if(out_refund_no, _leave_retry_queue(), RefundRecord.due == SALES_DUE)


def _order_actions(refund: Refund, order: OrderAfterRefund) -> list:
    actions = []
    if order.refunded_fen != order.expected_refunded_fen:
        actions.append(OrderRecord.refunded_fen.set(order.refunded_fen))
    if order.release_in_flight:
        actions.append(OrderRecord.refunds_in_flight.delete({refund.out_refund_no}))
    if order.status != order.expected_status:  # -> refunded: nothing is waiting on a timer any more
        actions += [OrderRecord.status.set(order.status), OrderRecord.timer_kind.remove(),
                    OrderRecord.timer_at.remove()]
    return actions


def _order_as_read(order: OrderAfterRefund):
    refunded = OrderRecord.refunded_fen == order.expected_refunded_fen
    if order.expected_refunded_fen == 0:
        refunded = OrderRecord.refunded_fen.does_not_exist() | refunded
    return (OrderRecord.status == order.expected_status) & refunded


def _leave_retry_queue() -> list:
    return [RefundRecord.due.remove(), RefundRecord.next_attempt_at.remove()]


def _update_if(out_refund_no: str, actions: list, condition) -> bool:
    return update_if(RefundRecord(out_refund_no), actions, condition)


def _raise_condition_failure(error: TransactWriteError, order_index: int | None) -> None:
    codes = {index: reason.code for index, reason in enumerate(error.cancellation_reasons or []) if reason}
    if codes.get(0) == "ConditionalCheckFailed":
        raise RefundFinished() from None
    if order_index is not None and codes.get(order_index) == "ConditionalCheckFailed":
        raise OrderMoved() from None
    if "TransactionConflict" in codes.values():
        raise OrderMoved() from None  # another completion was writing the same items: read again
