"""What happens to an order after it is placed: cancel, time out, ship, confirm receipt.

Every change goes through the state machine (domain/order_status.py) and is applied with a
conditional write on the expected status; a repeated action answers the order unchanged.
"""
from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Callable

from chalicelib import clock, queues
from chalicelib.domain import cursors
from chalicelib.domain.order_status import OrderEvent, OrderStatus, already_applied, next_status
from chalicelib.errors import Conflict, UpstreamError
from chalicelib.log import get_logger
from chalicelib.schemas.timers import LowStockCheck, OrderTimer
from chalicelib.services import members, notifications, offer_orders, order_coupons, payments, points, shipping_info, stock
from chalicelib.services.order_reads import (OrderNotFound, get_order, get_user_order,  # noqa: F401  (part of this module's API)
                                            overdue_unpaid_order_ids)
from chalicelib.settings import get_settings
from chalicelib.services.flash_sales import forget_sale
from chalicelib.storage import flash_transactions, order_lists, orders, transactions
from chalicelib.storage import payments as payment_store
from chalicelib.storage.base import ConditionFailed

log = get_logger(__name__)
COMPLETE_ATTEMPTS = 3
PAY_REMINDER_BEFORE = timedelta(minutes=5)  # how long before its deadline an unpaid order's buyer is reminded


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
    stock_released(order)
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
    stock_released(order)
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
    now = clock.now()
    # Unconditional adds, and an offer's place or price given back: they never fail the close.
    points_back = [*points.give_back(order, now), *offer_orders.on_close(order)]
    try:
        transactions.cancel_order_releasing_stock(order, reason, now,
                                                  extra_updates=[*order_coupons.release(order), *points_back])
    except order_coupons.CouponStateChanged:
        order_coupons.report_mismatch(order, "when it closed", now)
        transactions.cancel_order_releasing_stock(order, reason, now, extra_updates=points_back)


def stock_released(order: orders.Order) -> None:
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
    """shipped -> completed, with the points the order earns, in one transaction (a refund that
    completes meanwhile changes what it earns: read again and decide again)."""
    if not _check(order, OrderEvent.CONFIRM_RECEIPT):
        return order
    for _ in range(COMPLETE_ATTEMPTS):
        now = clock.now()
        try:
            transactions.complete_order(order, now, [*points.earn_on_completion(order, now),
                                                     *members.spend_on_completion(order, now)])
        except transactions.StatusChanged:
            current = get_order(order.order_id)
            if current.status != OrderStatus.SHIPPED.value:
                return _as_it_now_is(order.order_id, OrderEvent.CONFIRM_RECEIPT)
            order = current
            continue
        log.info("order completed", order_id=order.order_id)
        return replace(order, status=OrderStatus.COMPLETED.value, completed_at=now)
    raise UpstreamError("The order kept changing while being completed; try again", code="order_busy")


def ship_order(order_id: str, carrier: str, tracking_no: str) -> orders.Order:
    """paid -> shipped (merchant), recording the shipment and the auto-confirm timer."""
    order = get_order(order_id)
    if not _check(order, OrderEvent.SHIP):
        return order
    shipping_info.check_carrier(order, carrier)  # 400 unknown_carrier before anything changes
    check_group_succeeded(order)
    now = clock.now()
    shipment = {"carrier": carrier, "tracking_no": tracking_no, "shipped_at": clock.to_iso(now)}
    try:
        shipped = orders.ship(order_id, now, shipment, timer=(orders.TIMER_AUTO_CONFIRM, now + auto_confirm_after()))
    except orders.RefundInFlight as error:
        raise refund_in_progress(error.args[0]) from None
    except ConditionFailed:
        return _as_it_now_is(order_id, OrderEvent.SHIP)
    notifications.notify_order_event(shipped, "shipped", now)  # never raises
    return shipping_info.after_shipped(shipped)


def check_group_succeeded(order: orders.Order) -> None:
    """A group order ships only once its group succeeded: 409 group_not_succeeded. The flag only
    ever goes away (the payment that fills the group clears it), so this read cannot be stale in
    the harmful direction; the ship write is conditioned on it as well."""
    if order.awaiting_group:
        raise Conflict("The order's group has not succeeded yet: it ships once the group is full",
                       code="group_not_succeeded", details=[{"group_id": (order.offer or {}).get("id")}])


def refund_in_progress(out_refund_nos: list[str]) -> Conflict:
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
    _send_timers([_timer(OrderTimer(order_id=order_id, due_at=due_at))])


def schedule_after_placed(order_id: str, due_at: datetime, low_stock_sku_ids: list[str]) -> None:
    """Queue the order's timer message (delayed until its deadline, or SQS's 15-minute maximum),
    its pay reminder PAY_REMINDER_BEFORE the deadline (when that is still a minute away) and,
    when some of its SKUs may have crossed their low-stock threshold, the check of those, in one
    SendMessageBatch."""
    messages = [_timer(OrderTimer(order_id=order_id, due_at=due_at))]
    remind_at = due_at - PAY_REMINDER_BEFORE
    if remind_at - clock.now() >= timedelta(minutes=1):
        messages.append(_timer(OrderTimer(order_id=order_id, kind="pay_reminder", due_at=remind_at)))
    if low_stock_sku_ids:
        messages.append((LowStockCheck(kind="low_stock_check", sku_ids=low_stock_sku_ids).model_dump(mode="json"), 0))
    _send_timers(messages)


def _timer(timer: OrderTimer) -> tuple[dict, int]:
    delay = math.ceil(min(max(0.0, (timer.due_at - clock.now()).total_seconds()), queues.MAX_DELAY_SECONDS))
    return timer.model_dump(mode="json"), delay


def _send_timers(messages: list[tuple[dict, int]]) -> None:
    queues.send_messages(queues.ORDER_TIMERS, messages)


def handle_pay_deadline_timer(timer: OrderTimer) -> str:
    """A timer message arrived: close the order (or remind its buyer) if due, or wait again if
    SQS woke us early (its delay is at most 15 minutes)."""
    if clock.now() < timer.due_at:
        _send_timers([_timer(timer)])
        return "requeued"
    if timer.kind == "pay_reminder":
        return remind_to_pay(timer.order_id)
    return close_if_overdue(timer.order_id)


def remind_to_pay(order_id: str) -> str:
    """The buyer of a still unpaid order gets the pay-deadline reminder, if they accepted it
    (services/notifications.py: queued only with quota, sent once by its message key)."""
    order = orders.get_order(order_id)
    if order is None or order.status != OrderStatus.PENDING_PAYMENT.value:
        return "not_pending"
    return notifications.notify_order_event(order, "pay_reminder", clock.now())


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
