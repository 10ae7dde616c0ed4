"""Merchant order operations (issue 16): batch ship, split shipments, address changes before
shipping, remarks, merchant-started refunds of chosen lines."""
from __future__ import annotations

from chalicelib.api.admin_after_sales import admin_after_sale_out
from chalicelib.api.admin_orders import admin_order_out
from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
AdminAfterSaleOut = lazy_names("chalicelib.schemas.after_sales", "AdminAfterSaleOut")
(AddressChangeBody, BatchShipBody, BatchShipReply, MerchantRefundBody, RemarkBody, ShipmentBody) = lazy_names(
    "chalicelib.schemas.admin_ops",
    "AddressChangeBody", "BatchShipBody", "BatchShipReply", "MerchantRefundBody", "RemarkBody", "ShipmentBody")
AdminOrderOut = lazy_names("chalicelib.schemas.orders", "AdminOrderOut")

order_ops = lazy_module("chalicelib.services.order_ops")
merchant_refunds = lazy_module("chalicelib.services.merchant_refunds")

api = ApiBlueprint(__name__, tag="admin-orders")


@api.route("POST", "/v1/admin/orders/batch-ship", auth="admin", body=BatchShipBody, response=BatchShipReply,
           errors=(400, 401, 403), summary="Ship 1-50 orders, each on its own with a per-order result (again with the "
                                           "same tracking_no: ok, unchanged)")
def batch_ship(request: ApiRequest) -> BatchShipReply:
    results = order_ops.batch_ship([(item.order_id, item.carrier, item.tracking_no)
                                    for item in request.body.shipments])
    return BatchShipReply(results=results)


@api.route("POST", "/v1/admin/orders/{order_id}/shipments", auth="admin", body=ShipmentBody, response=AdminOrderOut,
           errors=(400, 401, 403, 404, 409),
           summary="Ship some units of some lines as one package; the order is shipped once every unit is (again "
                   "with the same tracking_no and lines: unchanged)")
def ship_package(request: ApiRequest) -> AdminOrderOut:
    body = request.body
    order = order_ops.ship_package(request.params["order_id"], {line.sku_id: line.quantity for line in body.lines},
                                   body.carrier, body.tracking_no, request.principal.subject)
    return admin_order_out(order)


@api.route("PATCH", "/v1/admin/orders/{order_id}/address", auth="admin", body=AddressChangeBody,
           response=AdminOrderOut, errors=(400, 401, 403, 404, 409),
           summary="Change the delivery address before shipping (409 already_shipped); audited with before/after")
def change_address(request: ApiRequest) -> AdminOrderOut:
    body = request.body
    fields = body.model_dump(exclude={"reason"})
    return admin_order_out(order_ops.change_address(request.params["order_id"], fields, body.reason))


@api.route("POST", "/v1/admin/orders/{order_id}/remarks", auth="admin", body=RemarkBody, response=AdminOrderOut,
           status=201, errors=(400, 401, 403, 404, 409), summary="Add a merchant remark to the order")
def add_remark(request: ApiRequest) -> AdminOrderOut:
    return admin_order_out(order_ops.add_remark(request.params["order_id"], request.body.text,
                                                request.principal.subject))


@api.route("POST", "/v1/admin/orders/{order_id}/refunds", auth="admin", body=MerchantRefundBody,
           response=AdminAfterSaleOut, errors=(400, 401, 403, 404, 409),
           summary="Refund chosen unshipped lines of a paid order through the after-sales refund (owner only; the "
                   "same request_id again: the same refund; 409 refund_exceeds_order beyond what is refundable)")
def merchant_refund(request: ApiRequest) -> AdminAfterSaleOut:
    body = request.body
    refund = merchant_refunds.refund_lines(request.params["order_id"], body.request_id,
                                           {line.sku_id: line.quantity for line in body.lines}, body.reason,
                                           request.principal.subject)
    return admin_after_sale_out(refund)
