"""Checkout preview and the user's orders."""
from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from chalicelib import clock
from chalicelib.api.http import ApiBlueprint, ApiRequest, Reply
from chalicelib.lazy import lazy_module, lazy_names
(CheckoutBody, OrderList, OrderListQuery, OrderOut, PlaceOrderBody, QuoteOut) = lazy_names(
    "chalicelib.schemas.orders",
    "CheckoutBody", "OrderList", "OrderListQuery", "OrderOut", "PlaceOrderBody", "QuoteOut")

if TYPE_CHECKING:
    from chalicelib.domain.pricing import Quote
    from chalicelib.storage.orders import Order

checkout = lazy_module("chalicelib.services.checkout")
order_lifecycle = lazy_module("chalicelib.services.order_lifecycle")

api = ApiBlueprint(__name__, tag="orders")


def quote_out(quote: Quote) -> QuoteOut:
    return QuoteOut.model_validate({**asdict(quote), "lines": [asdict(line) for line in quote.lines]})


def order_out(order: Order) -> OrderOut:
    when = lambda moment: clock.to_iso(moment) if moment else None  # noqa: E731
    return OrderOut(
        order_id=order.order_id, out_trade_no=order.out_trade_no, status=order.status,
        created_at=when(order.created_at), pay_deadline=when(order.pay_deadline), paid_at=when(order.paid_at),
        cancelled_at=when(order.cancelled_at), delivery_method=order.delivery_method,
        lines=[asdict(line) for line in order.lines], adjustments=list(order.adjustments),
        goods_fen=order.goods_fen, discount_fen=order.discount_fen, delivery_fee_fen=order.delivery_fee_fen,
        payable_fen=order.payable_fen, address=order.address, store_id=order.store_id, shipment=order.shipment,
        flash_sale_id=order.flash_sale["sale_id"] if order.flash_sale else None, points_used=order.points_used,
        offer=order.offer, awaiting_group=order.awaiting_group,
    )


@api.route("POST", "/v1/checkout/preview", body=CheckoutBody, response=QuoteOut, errors=(404, 409),
           summary="Price a would-be order (the given items, or the selected cart lines)")
def preview(request: ApiRequest) -> QuoteOut:
    return quote_out(checkout.preview_checkout(request.user_id, request.body))


@api.route("POST", "/v1/orders", body=PlaceOrderBody, response=OrderOut, status=201, also=(200,), errors=(404, 409),
           summary="Place the order, reserving stock; replaying checkout_token answers the same order (200)")
def place_order(request: ApiRequest) -> Reply:
    order, created = checkout.place_order(request.user_id, request.body)
    return Reply(order_out(order), 201 if created else 200)


@api.route("GET", "/v1/orders", query=OrderListQuery, response=OrderList, summary="The user's orders, newest first")
def list_orders(request: ApiRequest) -> OrderList:
    query = request.query
    page, next_cursor = order_lifecycle.list_user_orders(request.user_id, query.status, query.limit, query.cursor)
    return OrderList(items=[order_out(order) for order in page], next_cursor=next_cursor)


@api.route("GET", "/v1/orders/{order_id}", response=OrderOut, errors=(404,), summary="One of the user's orders")
def get_order(request: ApiRequest) -> OrderOut:
    return order_out(order_lifecycle.get_user_order(request.user_id, request.params["order_id"]))


@api.route("POST", "/v1/orders/{order_id}/cancel", response=OrderOut, errors=(404, 409),
           summary="Cancel before payment (again: 200, unchanged); the reserved stock is released")
def cancel_order(request: ApiRequest) -> OrderOut:
    return order_out(order_lifecycle.cancel_order(request.user_id, request.params["order_id"]))


@api.route("POST", "/v1/orders/{order_id}/confirm-receipt", response=OrderOut, errors=(404, 409),
           summary="Confirm receipt of a shipped order (again: 200, unchanged)")
def confirm_receipt(request: ApiRequest) -> OrderOut:
    return order_out(order_lifecycle.confirm_receipt(request.user_id, request.params["order_id"]))
