"""TransactWrites that move stock together with the order status change that causes it.

Stock is two-phase (ARCHITECTURE.md): placing an order moves units available -> reserved in the
same transaction as the order put; cancelling or timing out moves them back, conditioned on
the order still being unpaid, so a timer and a sweep racing on one order release it once.
Every SKU keeps `stock_in == available + allocated + reserved + sold`.
"""
from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.storage.catalog import ProductRecord, SkuRecord
from chalicelib.storage.orders import Order, OrderRecord, to_record


class OrderAlreadyExists(Exception):
    """An order with this id (this user's checkout_token) already exists: a replay."""


class StockShortage(Exception):
    """Some SKUs had fewer units available than asked, or went off sale."""

    def __init__(self, sku_ids: list[str]):
        super().__init__(", ".join(sku_ids))
        self.sku_ids = sku_ids


class ProductUnavailable(Exception):
    def __init__(self, product_ids: list[str]):
        super().__init__(", ".join(product_ids))
        self.product_ids = product_ids


class StatusChanged(Exception):
    """The order was no longer in the status the change required (someone else moved it)."""


def _failed_indexes(error: TransactWriteError) -> list[int]:
    reasons = error.cancellation_reasons or []
    return [index for index, reason in enumerate(reasons) if reason and reason.code == "ConditionalCheckFailed"]


def place_order_reserving_stock(order: Order) -> None:
    """Put the order and reserve its units, all or nothing.

    Conditions: the order id is new; every product is on sale; every SKU is on sale with
    `available >= quantity`. Items are sent in PynamoDB's order (condition checks, puts,
    updates), which is the order of the cancellation reasons we map back.
    """
    product_ids = sorted({line.product_id for line in order.lines})
    try:
        with TransactWrite(connection=OrderRecord._get_connection().connection) as transaction:
            for product_id in product_ids:
                transaction.condition_check(ProductRecord, product_id, condition=ProductRecord.on_sale == True)  # noqa: E712
            transaction.save(to_record(order), condition=OrderRecord.order_id.does_not_exist())
            for line in order.lines:
                transaction.update(
                    SkuRecord(line.sku_id),
                    actions=[SkuRecord.available.add(-line.quantity), SkuRecord.reserved.add(line.quantity)],
                    condition=(SkuRecord.available >= line.quantity) & (SkuRecord.on_sale == True),  # noqa: E712
                )
    except TransactWriteError as error:
        failed = _failed_indexes(error)
        if not failed:
            raise
        order_index = len(product_ids)
        if order_index in failed:
            raise OrderAlreadyExists() from None
        off_sale = [product_ids[i] for i in failed if i < order_index]
        if off_sale:
            raise ProductUnavailable(off_sale) from None
        raise StockShortage([order.lines[i - order_index - 1].sku_id for i in failed]) from None


def cancel_order_releasing_stock(order: Order, reason: str, now: datetime) -> None:
    """pending_payment -> cancelled, units reserved -> available, in one transaction.

    Raises StatusChanged when the order is no longer pending_payment (paid, or already closed
    by the other of timer and sweep), in which case nothing was written.
    """
    _leave_pending_payment(order, [OrderRecord.status.set("cancelled"), OrderRecord.cancelled_at.set(now),
                                   OrderRecord.cancel_reason.set(reason)],
                           stock_to=SkuRecord.available)


def pay_order_committing_stock(order: Order, paid_at: datetime) -> None:
    """pending_payment -> paid, units reserved -> sold, in one transaction (used by payment).

    Raises StatusChanged when the order is no longer pending_payment; nothing is written then.
    """
    _leave_pending_payment(order, [OrderRecord.status.set("paid"), OrderRecord.paid_at.set(paid_at)],
                           stock_to=SkuRecord.sold)


def _leave_pending_payment(order: Order, order_actions: list, stock_to) -> None:
    """Apply `order_actions` (condition: still pending_payment; the pay-deadline timer goes) and
    move each line's units from reserved to `stock_to`, all or nothing."""
    try:
        with TransactWrite(connection=OrderRecord._get_connection().connection) as transaction:
            transaction.update(
                OrderRecord(order.order_id),
                actions=order_actions + [OrderRecord.timer_kind.remove(), OrderRecord.timer_at.remove()],
                condition=OrderRecord.status == "pending_payment",
            )
            for line in order.lines:
                transaction.update(
                    SkuRecord(line.sku_id),
                    actions=[SkuRecord.reserved.add(-line.quantity), stock_to.add(line.quantity)],
                    condition=SkuRecord.reserved >= line.quantity,
                )
    except TransactWriteError as error:
        if 0 in _failed_indexes(error):
            raise StatusChanged() from None
        raise
