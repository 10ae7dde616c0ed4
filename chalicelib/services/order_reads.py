"""Reading orders: one order with the 404 rules of API.md (someone else's order is 404, never
403), and the unpaid orders the pay-deadline sweep and the reconciliation look at."""
from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.errors import NotFound
from chalicelib.settings import get_settings
from chalicelib.storage import orders


class OrderNotFound(NotFound):
    code = "order_not_found"
    message = "No such order"


def get_user_order(user_id: str, order_id: str) -> orders.Order:
    order = orders.get_order(order_id)
    if order is None or order.user_id != user_id:
        raise OrderNotFound()
    return order


def get_order(order_id: str) -> orders.Order:
    order = orders.get_order(order_id)
    if order is None:
        raise OrderNotFound()
    return order


def overdue_unpaid_order_ids(at: datetime, limit: int) -> list[str]:
    """Unpaid orders whose deadline has passed at `at`, oldest first: no order can be due that
    was created less than the shortest pay timeout (normal or flash-sale) before it. Index
    answers are candidates only: callers re-read each order and decide from the order itself."""
    settings = get_settings()
    shortest = min(settings.pay_timeout_minutes, settings.flash_pay_timeout_minutes)
    return orders.overdue_unpaid_order_ids(at - timedelta(minutes=shortest), at, limit)
