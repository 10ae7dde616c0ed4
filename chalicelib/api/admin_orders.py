"""Merchant order routes: list and filter, one order with its payments and refunds, ship, retry a stuck refund."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib import clock
from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
from chalicelib.api.orders import order_out
(AdminOrderList, AdminOrderOut, AdminOrderQuery, RefundOut, ShipBody) = lazy_names(
    "chalicelib.schemas.orders",
    "AdminOrderList", "AdminOrderOut", "AdminOrderQuery", "RefundOut", "ShipBody")

if TYPE_CHECKING:
    from chalicelib.storage.orders import Order
    from chalicelib.storage.payments import Refund

merchant_orders = lazy_module("chalicelib.services.merchant_orders")
payments = lazy_module("chalicelib.services.payments")
refunds = lazy_module("chalicelib.services.refunds")
shipping_info = lazy_module("chalicelib.services.shipping_info")

api = ApiBlueprint(__name__, tag="admin-orders")


def admin_order_out(order: Order) -> AdminOrderOut:
    paid, refunded = payments.payments_and_refunds(order)
    return AdminOrderOut(
        **order_out(order).model_dump(), user_id=order.user_id, cancel_reason=order.cancel_reason,
        payments=[{"transaction_id": p.transaction_id, "amount_fen": p.amount_fen, "paid_at": clock.to_iso(p.paid_at)}
                  for p in paid],
        refunds=[refund_out(r) for r in refunded], refunded_fen=order.refunded_fen,
        shipping_upload=shipping_info.upload_view(order), shipments=list(order.shipments),
        shipped_units=dict(order.shipped_units or {}), remarks=list(order.remarks))


def refund_out(refund: Refund) -> RefundOut:
    return RefundOut(out_refund_no=refund.out_refund_no, refund_id=refund.refund_id, amount_fen=refund.amount_fen,
                     status=refund.status, request_id=refund.request_id, attempts=refund.attempts)


@api.route("GET", "/v1/admin/orders", auth="admin", query=AdminOrderQuery, response=AdminOrderList,
           summary="Orders newest first, filtered by status and creation time")
def list_orders(request: ApiRequest) -> AdminOrderList:
    query = request.query
    page, next_cursor = merchant_orders.list_orders(query.status, query.created_from, query.created_to,
                                                    query.limit, query.cursor)
    return AdminOrderList(items=[admin_order_out(order) for order in page], next_cursor=next_cursor)


@api.route("GET", "/v1/admin/orders/{order_id}", auth="admin", response=AdminOrderOut, errors=(404,),
           summary="One order with its payments and refunds")
def get_order(request: ApiRequest) -> AdminOrderOut:
    return admin_order_out(merchant_orders.get_order(request.params["order_id"]))


@api.route("POST", "/v1/admin/orders/{order_id}/ship", auth="admin", body=ShipBody, response=AdminOrderOut,
           errors=(404, 409), summary="paid -> shipped with carrier and tracking number (again: unchanged)")
def ship_order(request: ApiRequest) -> AdminOrderOut:
    body = request.body
    return admin_order_out(merchant_orders.ship_order(request.params["order_id"], body.carrier, body.tracking_no))


@api.route("POST", "/v1/admin/refunds/{out_refund_no}/retry", auth="admin", response=RefundOut, errors=(404, 409),
           summary="Ask WeChat again now about a stuck refund (after fixing the cause); a refund already being "
                   "retried answers unchanged")
def retry_refund(request: ApiRequest) -> RefundOut:
    return refund_out(refunds.retry_stuck_refund(request.params["out_refund_no"]))
