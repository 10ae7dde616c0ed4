"""What an offer order (group-buy or bargain) gives back when it closes unpaid: writes that ride
on the close's own transaction (services/order_lifecycle.release_unpaid), so they happen exactly
once with it."""
from __future__ import annotations

from chalicelib.storage import orders
from chalicelib.storage.transactions import ExtraUpdate


def on_close(order: orders.Order) -> list[ExtraUpdate]:
    """A group order frees its place and gives back the buyer's count in the activity; a bargain
    order lets the bargain's price be used again (until the bargain expires)."""
    offer = order.offer
    if not offer:
        return []
    if offer["kind"] == "group_buy":
        from chalicelib.storage import group_buys

        return [group_buys.close_member(offer["id"], order.user_id, order.order_id),
                group_buys.give_back_limit(offer["activity_id"], order.user_id)]
    if offer["kind"] == "bargain":
        from chalicelib.storage import bargains

        return [bargains.release_hold(offer["id"])]
    return []
