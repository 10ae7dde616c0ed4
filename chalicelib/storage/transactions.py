"""TransactWrites that move stock together with the order status change that causes it.

Stock is two-phase (ARCHITECTURE.md): placing an order moves units available -> reserved in the
same transaction as the order put; cancelling or timing out moves them back, conditioned on
the order still being unpaid, so a timer and a sweep racing on one order release it once.
Every SKU keeps `stock_in == available + allocated + reserved + sold`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.storage.carts import CartLineRecord
from chalicelib.storage.catalog import SkuRecord
from chalicelib.storage.skus import sellable
from chalicelib.storage.orders import Order, OrderRecord, to_record
from chalicelib.storage.payments import Payment, PaymentRecord, Refund, RefundRecord, payment_record, refund_record


class OrderAlreadyExists(Exception):
    """An order with this id (this user's checkout_token) already exists: a replay."""


class StockShortage(Exception):
    """Some SKUs had fewer units available than asked, or they or their products went off sale."""

    def __init__(self, sku_ids: list[str]):
        super().__init__(", ".join(sku_ids))
        self.sku_ids = sku_ids


class StatusChanged(Exception):
    """The order was no longer in the status the change required (someone else moved it)."""


def failed_indexes(error: TransactWriteError) -> list[int]:
    """Positions of the transaction's items whose condition failed (in PynamoDB's send order)."""
    reasons = error.cancellation_reasons or []
    return [index for index, reason in enumerate(reasons) if reason and reason.code == "ConditionalCheckFailed"]


@dataclass(frozen=True)
class ExtraUpdate:
    """One more Update for the order's transaction, in DynamoDB's own shape (e.g. the coupon
    wallet's lock, storage/coupons.py), and what to raise when its condition fails."""
    update: dict[str, Any]  # TableName, Key, UpdateExpression, ConditionExpression, names, values
    on_failure: Exception


def _transact_raw(*, deletes: list[dict] = (), puts: list[dict] = (), updates: list[dict] = ()) -> None:
    """One TransactWriteItems of items in PynamoDB's operation shape (from the models'
    get_*_kwargs_from_instance, or raw DynamoDB like ExtraUpdate's), sent in this order:
    deletes, puts, updates (the order of TransactWriteError's cancellation reasons)."""
    OrderRecord._get_connection().connection.transact_write_items(
        condition_check_items=[], delete_items=list(deletes), put_items=list(puts), update_items=list(updates))


def raise_extra_failure(failed: list[int], first_extra: int, extras: list[ExtraUpdate]) -> None:
    """Raise the own failure of the first extra update (sent from `first_extra` on) whose condition failed."""
    for index in failed:
        if index >= first_extra:
            raise extras[index - first_extra].on_failure from None


def place_order_reserving_stock(order: Order, cart_sku_ids: Iterable[str] = (),
                                extra_updates: Iterable[ExtraUpdate] = ()) -> None:
    """Put the order, reserve its units and take its lines out of the cart, all or nothing.

    Conditions: the order id is new (else OrderAlreadyExists); every SKU and its product are on
    sale with `available >= quantity` (SkuRecord.product_on_sale spares a ConditionCheck per
    product; else StockShortage naming the SKUs); each extra update's own condition. The cart
    lines the order came from (`cart_sku_ids`) are deleted unconditionally: a line already gone
    is the intended outcome. One TransactWriteItems in DynamoDB's order of our lists (deletes,
    the put, updates), which is the order of the cancellation reasons mapped back.
    """
    extras = list(extra_updates)
    deletes = [CartLineRecord(order.user_id, sku_id).get_delete_kwargs_from_instance() for sku_id in cart_sku_ids]
    put = to_record(order).get_save_kwargs_from_instance(condition=OrderRecord.order_id.does_not_exist())
    sku_updates = [SkuRecord(line.sku_id).get_update_kwargs_from_instance(
        actions=[SkuRecord.available.add(-line.quantity), SkuRecord.reserved.add(line.quantity)],
        condition=sellable(line.quantity)) for line in order.lines]
    try:
        _transact_raw(deletes=deletes, puts=[put], updates=sku_updates + [extra.update for extra in extras])
    except TransactWriteError as error:
        failed = failed_indexes(error)
        if not failed:
            raise
        order_index = len(deletes)
        if order_index in failed:
            raise OrderAlreadyExists() from None
        raise_extra_failure(failed, order_index + 1 + len(sku_updates), extras)
        raise StockShortage([order.lines[i - order_index - 1].sku_id for i in failed if i > order_index]) from None


def cancel_order_releasing_stock(order: Order, reason: str, now: datetime,
                                 extra_updates: Iterable[ExtraUpdate] = ()) -> None:
    """pending_payment -> cancelled, units reserved -> available (and the extra updates, e.g.
    its coupons unlocked), in one transaction.

    Raises StatusChanged when the order is no longer pending_payment (paid, or already closed
    by the other of timer and sweep), in which case nothing was written.
    """
    _leave_pending_payment(order, [OrderRecord.status.set("cancelled"), OrderRecord.cancelled_at.set(now),
                                   OrderRecord.cancel_reason.set(reason)],
                           stock_to=SkuRecord.available, extras=list(extra_updates))


def complete_order(order: Order, now: datetime, extra_updates: Iterable[ExtraUpdate] = ()) -> None:
    """shipped -> completed, its auto-confirm timer cleared, with the extra updates (the points it
    earns), all or nothing. Conditioned on the order still shipped and its refunded total as read
    (what it earns follows from that total). Raises StatusChanged when either moved."""
    extras = list(extra_updates)
    refunded_as_read = (OrderRecord.refunded_fen == order.refunded_fen if order.refunded_fen
                        else OrderRecord.refunded_fen.does_not_exist() | (OrderRecord.refunded_fen == 0))
    order_update = OrderRecord(order.order_id).get_update_kwargs_from_instance(
        actions=[OrderRecord.status.set("completed"), OrderRecord.completed_at.set(now),
                 OrderRecord.timer_kind.remove(), OrderRecord.timer_at.remove()],
        condition=(OrderRecord.status == "shipped") & refunded_as_read)
    try:
        _transact_raw(updates=[order_update, *(extra.update for extra in extras)])
    except TransactWriteError as error:
        failed = failed_indexes(error)
        if 0 in failed:
            raise StatusChanged() from None
        raise_extra_failure(failed, 1, extras)
        raise


class DuplicatePayment(Exception):
    """This transaction_id is recorded already: the notify is a duplicate."""


def pay_order(order: Order, payment: Payment, now: datetime, extra_updates: Iterable[ExtraUpdate] = (),
              order_actions: Iterable[Any] = ()) -> None:
    """Record the payment and move the order pending_payment -> paid, units reserved -> sold
    (and the extra updates, e.g. its coupons used; `order_actions`: more changes of the order
    itself, e.g. its group's, services/group_buys.py).

    Raises DuplicatePayment (transaction_id recorded before) or StatusChanged (the order is no
    longer unpaid); nothing is written then.
    """
    _leave_pending_payment(order, [OrderRecord.status.set("paid"), OrderRecord.paid_at.set(payment.paid_at),
                                   OrderRecord.transaction_id.set(payment.transaction_id), *order_actions],
                           stock_to=SkuRecord.sold, puts=[_payment_put(payment, now)], extras=list(extra_updates))


def revive_order(order: Order, payment: Payment, now: datetime, extra_updates: Iterable[ExtraUpdate] = ()) -> None:
    """A payment for an order that was closed: take its units from available stock again (and
    the extra updates, e.g. its coupons taken again) and move it cancelled -> paid, with the
    payment recorded, all or nothing.

    Raises DuplicatePayment, StatusChanged (not cancelled any more), StockShortage, or an extra
    update's own failure.
    """
    extras = list(extra_updates)
    record, condition = _payment_put(payment, now)
    order_update = OrderRecord(order.order_id).get_update_kwargs_from_instance(
        actions=[OrderRecord.status.set("paid"), OrderRecord.paid_at.set(payment.paid_at),
                 OrderRecord.transaction_id.set(payment.transaction_id), OrderRecord.cancelled_at.remove(),
                 OrderRecord.cancel_reason.remove()],
        condition=OrderRecord.status == "cancelled")
    sku_updates = [SkuRecord(line.sku_id).get_update_kwargs_from_instance(
        actions=[SkuRecord.available.add(-line.quantity), SkuRecord.sold.add(line.quantity)],
        condition=SkuRecord.available >= line.quantity) for line in order.lines]
    try:
        _transact_raw(puts=[record.get_save_kwargs_from_instance(condition=condition)],
                      updates=[order_update, *sku_updates, *(extra.update for extra in extras)])
    except TransactWriteError as error:
        failed = failed_indexes(error)
        if 0 in failed:
            raise DuplicatePayment() from None
        if 1 in failed:
            raise StatusChanged() from None
        raise_extra_failure(failed, 2 + len(sku_updates), extras)
        if failed:
            raise StockShortage([order.lines[i - 2].sku_id for i in failed]) from None
        raise


def record_payment_to_refund(payment: Payment, refund: Refund, now: datetime) -> None:
    """A payment that cannot be applied (closed and sold out, or a second payment): record it
    with the full refund we are about to request, together. Raises DuplicatePayment."""
    try:
        with TransactWrite(connection=OrderRecord._get_connection().connection) as transaction:
            record, condition = _payment_put(payment, now)
            transaction.save(record, condition=condition)
            transaction.save(refund_record(refund), condition=RefundRecord.out_refund_no.does_not_exist())
    except TransactWriteError as error:
        if 0 in failed_indexes(error):
            raise DuplicatePayment() from None
        raise


def _payment_put(payment: Payment, now: datetime):
    return payment_record(payment, now), PaymentRecord.transaction_id.does_not_exist()


def _leave_pending_payment(order: Order, order_actions: list, stock_to, puts: list | None = None,
                           extras: list[ExtraUpdate] | None = None) -> None:
    """Apply `order_actions` (condition: still pending_payment) and move each line's units from
    reserved to `stock_to`, all or nothing. `puts` are (record, condition) pairs written in the
    same transaction, before the order update; `extras` after the SKUs."""
    puts, extras = puts or [], extras or []
    order_update = OrderRecord(order.order_id).get_update_kwargs_from_instance(
        actions=order_actions, condition=OrderRecord.status == "pending_payment")
    sku_updates = [SkuRecord(line.sku_id).get_update_kwargs_from_instance(
        actions=[SkuRecord.reserved.add(-line.quantity), stock_to.add(line.quantity)],
        condition=SkuRecord.reserved >= line.quantity) for line in order.lines]
    try:
        _transact_raw(puts=[record.get_save_kwargs_from_instance(condition=condition) for record, condition in puts],
                      updates=[order_update, *sku_updates, *(extra.update for extra in extras)])
    except TransactWriteError as error:
        failed = failed_indexes(error)
        if puts and any(index < len(puts) for index in failed):
            raise DuplicatePayment() from None
        if len(puts) in failed:
            raise StatusChanged() from None
        raise_extra_failure(failed, len(puts) + 1 + len(sku_updates), extras)
        raise
