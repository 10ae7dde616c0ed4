"""The merchant's view of orders: list by status and time, read one with its money, ship."""
from __future__ import annotations

from datetime import datetime

from chalicelib.domain import cursors
from chalicelib.services import order_lifecycle
from chalicelib.settings import get_settings
from chalicelib.storage import order_lists, orders


def list_orders(status: str | None, created_from: datetime | None, created_to: datetime | None, limit: int,
                cursor: str | None) -> tuple[list[orders.Order], str | None]:
    secret = get_settings().auth_token_secret
    # The cursor is bound to the filter it was made for: another filter's cursor is a 400.
    scope = f"admin-orders:{status}:{created_from}:{created_to}"
    page, last_key = order_lists.list_orders_for_merchant(status, created_from, created_to, limit,
                                                     cursors.decode_cursor(cursor, secret, scope))
    return page, cursors.encode_cursor(last_key, secret, scope)


def get_order(order_id: str) -> orders.Order:
    return order_lifecycle.get_order(order_id)


def ship_order(order_id: str, carrier: str, tracking_no: str) -> orders.Order:
    """The whole order (with packages shipped already: the rest, services/order_ops.py)."""
    from chalicelib.services import order_ops

    return order_ops.ship_whole(order_id, carrier, tracking_no)
