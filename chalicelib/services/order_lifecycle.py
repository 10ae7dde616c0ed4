"""What happens to an order after it is placed: cancel, time out, ship, confirm receipt.

Every change goes through the state machine (domain/order_status.py) and is applied with a
conditional write on the expected status; a repeated action answers the order unchanged.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Callable

from chalicelib import clock, queues
from chalicelib.domain import cursors
from chalicelib.domain.order_status import OrderEvent, OrderStatus, already_applied, next_status
from chalicelib.errors import Conflict, UpstreamError
from chalicelib.log import get_logger
from chalicelib.schemas.timers import LowStockCheck, OrderTimer
from chalicelib.services import order_coupons, payments, shipping_info, stock
from chalicelib.services.order_reads import (OrderNotFound, get_order, get_user_order,  # noqa: F401  (part of this module's API)
                                            overdue_unpaid_order_ids)
from chalicelib.settings import get_settings
from chalicelib.services.flash_sales import forget_sale
from chalicelib.storage import flash_transactions, order_lists, orders, transactions
from chalicelib.storage import payments as payment_store
from chalicelib.storage.base import ConditionFailed

log = get_logger(__name__)


def _check(order: orders.Order, event: OrderEvent) -> bool:
    """False when the event already happened (answer unchanged); raises 409 when forbidden."""
    status = OrderStatus(order.status)
    if already_applied(status, event):
        return False
    next_status(status, event)
    return True


def _as_it_now_is(order_id: str, event: OrderEvent) -> orders.Order:
    """After losing a race: the order as it now is, or 409 if the event is now forbidden."""
    current = get_order(order_id)
    _check(current, event)
    return current


def cancel_order(user_id: str, order_id: str) -> orders.Order:
    """The user cancels before paying: the reservation goes back to available stock."""
    order = get_user_order(user_id, order_id)
    if not _check(order, OrderEvent.CANCEL):
        return order
    settled = payments.settle_with_wechat(order)
    if settled == "unavailable":
        raise UpstreamError("WeChat Pay could not confirm the order is unpaid; try again",
                            code="wechat_pay_unavailable")
    if settled == "paid":
        return _as_it_now_is(order_id, OrderEvent.CANCEL)  # 409: it was paid after all
    try:
        release_unpaid(order, "user")
    except transactions.StatusChanged:  # paid or timed out meanwhile
        return _as_it_now_is(order_id, OrderEvent.CANCEL)
    log.info("order cancelled by the user", order_id=order_id)
    _stock_released(order)
    return get_order(order_id)


def close_if_overdue(order_id: str) -> str:
    """Timer and sweep: close an unpaid order whose deadline has passed. Returns what happened.

    Both may fire for one order; the conditional transaction lets exactly one release stock.
    """
    order = orders.get_order(order_id)
    if order is None:
        return "missing"
    if order.status != OrderStatus.PENDING_PAYMENT.value:
        return "not_pending"
    if clock.now() < order.pay_deadline:
        return "not_due"
    settled = payments.settle_with_wechat(order)
    if settled in ("paid", "unavailable"):
        return settled
    try:
        release_unpaid(order, "timeout")
    except transactions.StatusChanged:
        return "not_pending"
    log.info("unpaid order closed at its deadline", order_id=order_id)
    _stock_released(order)
    return "closed"


def release_unpaid(order: orders.Order, reason: str) -> None:
    """Close the unpaid order and release its units: a flash-sale order's go back to its sale
    while the sale runs (so the next buyer can win them), any other's to available stock.
    Raises StatusChanged when the order is no longer unpaid."""
    if order.flash_sale:
        try:
            flash_transactions.return_unit_to_sale(order, reason, clock.now())
            forget_sale(order.flash_sale["sale_id"])
            return
        except flash_transactions.SaleEnded:
            pass  # its unsold units went back already: this one follows them
    try:
        transactions.cancel_order_releasing_stock(order, reason, clock.now(),
                                                  extra_updates=order_coupons.release(order))
    except order_coupons.CouponStateChanged:
        order_coupons.report_mismatch(order, "when it closed", clock.now())
        transactions.cancel_order_releasing_stock(order, reason, clock.now())


def _stock_released(order: orders.Order) -> None:
    """Units came back: SKUs back above their threshold may alert again on the next crossing."""
    stock.after_stock_moved([line.sku_id for line in order.lines], decreased=False)


def confirm_receipt(user_id: str, order_id: str) -> orders.Order:
    return _complete(get_user_order(user_id, order_id))


def auto_confirm_if_due(order_id: str) -> str:
    order = orders.get_order(order_id)
    if order is None or order.status != OrderStatus.SHIPPED.value:
        return "not_shipped"
    if order.shipped_at and clock.now() < order.shipped_at + auto_confirm_after():
        return "not_due"
    _complete(order)
    return "completed"


def _complete(order: orders.Order) -> orders.Order:
    if not _check(order, OrderEvent.CONFIRM_RECEIPT):
        return order
    try:
        return orders.change_status(order.order_id, OrderStatus.SHIPPED.value, OrderStatus.COMPLETED.value,
                                    completed_at=clock.now())
    except ConditionFailed:
        return _as_it_now_is(order.order_id, OrderEvent.CONFIRM_RECEIPT)


def ship_order(order_id: str, carrier: str, tracking_no: str) -> orders.Order:
    """paid -> shipped (merchant), recording the shipment and the auto-confirm timer."""
    order = get_order(order_id)
    if not _check(order, OrderEvent.SHIP):
        return order
    shipping_info.check_carrier(order, carrier)  # 400 unknown_carrier before anything changes
    now = clock.now()
    shipment = {"carrier": carrier, "tracking_no": tracking_no, "shipped_at": clock.to_iso(now)}
    try:
        shipped = orders.ship(order_id, now, shipment, timer=(orders.TIMER_AUTO_CONFIRM, now + auto_confirm_after()))
    except orders.RefundInFlight as error:
        raise _refund_in_progress(error.args[0]) from None
    except ConditionFailed:
        return _as_it_now_is(order_id, OrderEvent.SHIP)
    return shipping_info.after_shipped(shipped)


def _refund_in_progress(out_refund_nos: list[str]) -> Conflict:
    """409 naming the after-sales requests whose refunds of unshipped units are under way."""
    details = []
    for out_refund_no in out_refund_nos:
        refund = payment_store.get_refund(out_refund_no)
        details.append({"out_refund_no": out_refund_no, "request_id": refund.request_id if refund else None,
                        "refund_status": refund.status if refund else None})
    return Conflict("A refund of these goods is under way: ship after it ends (or, if it fails, reject the "
                    "request first)", code="refund_in_progress", details=details)  # queues WeChat's shipping-info upload; never raises


def auto_confirm_after() -> timedelta:
    return timedelta(days=get_settings().auto_confirm_days)


def schedule_pay_deadline(order_id: str, due_at: datetime) -> None:
    """Queue the order's timer message, delayed until its deadline (or SQS's 15-minute maximum)."""
    schedule_after_placed(order_id, due_at, [])


def schedule_after_placed(order_id: str, due_at: datetime, low_stock_sku_ids: list[str]) -> None:
    """Queue the order's timer message (delayed until its deadline, or SQS's 15-minute maximum)
    and, when some of its SKUs may have crossed their low-stock threshold, the check of those,
    in one SendMessageBatch."""
    delay = math.ceil(min(max(0.0, (due_at - clock.now()).total_seconds()), queues.MAX_DELAY_SECONDS))
    messages = [(OrderTimer(order_id=order_id, due_at=due_at).model_dump(mode="json"), delay)]
    if low_stock_sku_ids:
        messages.append((LowStockCheck(kind="low_stock_check", sku_ids=low_stock_sku_ids).model_dump(mode="json"), 0))
    queues.send_messages(queues.ORDER_TIMERS, messages)


def handle_pay_deadline_timer(timer: OrderTimer) -> str:
    """A timer message arrived: close the order if due, or wait again if SQS woke us early."""
    if clock.now() < timer.due_at:
        schedule_pay_deadline(timer.order_id, timer.due_at)
        return "requeued"
    return close_if_overdue(timer.order_id)


def sweep_overdue_orders(limit: int = 100) -> dict[str, int]:
    """The safety net behind the timers: close every unpaid order past its deadline."""
    return _sweep(overdue_unpaid_order_ids(clock.now(), limit), close_if_overdue)


def sweep_auto_confirm(limit: int = 100) -> dict[str, int]:
    """Complete shipped orders AUTO_CONFIRM_DAYS after shipping."""
    return _sweep(orders.due_order_ids(orders.TIMER_AUTO_CONFIRM, clock.now(), limit), auto_confirm_if_due)


def _sweep(order_ids: list[str], handle: Callable[[str], str]) -> dict[str, int]:
    """Handle each order an index Query found (never a scan); count the outcomes."""
    outcomes: dict[str, int] = {}
    for order_id in order_ids:
        outcome = handle(order_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def list_user_orders(user_id: str, status: str | None, limit: int, cursor: str | None) -> tuple[list[orders.Order], str | None]:
    """A page of the user's own orders, newest first, with an opaque cursor for the next page."""
    secret, scope = get_settings().auth_token_secret, f"orders:{user_id}"
    position = cursors.decode_cursor(cursor, secret, scope)
    page, last_key = order_lists.list_user_orders(user_id, status, limit, position)
    return page, cursors.encode_cursor(last_key, secret, scope)
