"""Reading one order, with the 404 rules of API.md (someone else's order is 404, never 403)."""
from __future__ import annotations

from chalicelib.errors import NotFound
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
