"""Merchant after-sales routes: the list by status, approve (a refund: asks WeChat; a return: waits for the
goods), receive a return's goods (restock, then the refund), reject."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.after_sales import after_sale_out
from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
(AdminAfterSaleList, AdminAfterSaleOut, AdminAfterSaleQuery, RejectBody, ReplacementBody) = lazy_names(
    "chalicelib.schemas.after_sales",
    "AdminAfterSaleList", "AdminAfterSaleOut", "AdminAfterSaleQuery", "RejectBody", "ReplacementBody")

if TYPE_CHECKING:
    from chalicelib.storage.after_sales import AfterSale

after_sales = lazy_module("chalicelib.services.after_sales")

api = ApiBlueprint(__name__, tag="admin-after-sales")


def admin_after_sale_out(request: AfterSale) -> AdminAfterSaleOut:
    return AdminAfterSaleOut(**after_sale_out(request).model_dump(), user_id=request.user_id,
                             out_refund_no=request.out_refund_no, refund_status=after_sales.refund_status(request))


@api.route("GET", "/v1/admin/after-sales", auth="admin", query=AdminAfterSaleQuery, response=AdminAfterSaleList,
           summary="After-sales requests newest first, optionally by status")
def list_after_sales(request: ApiRequest) -> AdminAfterSaleList:
    query = request.query
    page, next_cursor = after_sales.list_requests(query.status, query.limit, query.cursor)
    return AdminAfterSaleList(items=[admin_after_sale_out(item) for item in page], next_cursor=next_cursor)


@api.route("POST", "/v1/admin/after-sales/{request_id}/approve", auth="admin", response=AdminAfterSaleOut,
           errors=(404, 409), summary="Approve: record the refund and ask WeChat Pay (again: 200, no second refund)")
def approve_after_sale(request: ApiRequest) -> AdminAfterSaleOut:
    return admin_after_sale_out(after_sales.approve(request.params["request_id"]))


@api.route("POST", "/v1/admin/after-sales/{request_id}/receive", auth="admin", response=AdminAfterSaleOut,
           errors=(404, 409), summary="A return's goods are back: restock them (reason return) and send the refund "
                                      "(again: 200, unchanged)")
def receive_return(request: ApiRequest) -> AdminAfterSaleOut:
    return admin_after_sale_out(after_sales.receive_return(request.params["request_id"]))


@api.route("POST", "/v1/admin/after-sales/{request_id}/ship-replacement", auth="admin", body=ReplacementBody,
           response=AdminAfterSaleOut, errors=(404, 409),
           summary="An exchange whose goods were received: the replacement's tracking (again: 200, unchanged)")
def ship_replacement(request: ApiRequest) -> AdminAfterSaleOut:
    body = request.body
    return admin_after_sale_out(after_sales.ship_replacement(request.params["request_id"], body.carrier,
                                                             body.tracking_no))


@api.route("POST", "/v1/admin/after-sales/{request_id}/reject", auth="admin", body=RejectBody,
           response=AdminAfterSaleOut, errors=(404, 409),
           summary="Reject, releasing its units (again: 200; a refunding or refunded one: 409)")
def reject_after_sale(request: ApiRequest) -> AdminAfterSaleOut:
    return admin_after_sale_out(after_sales.reject(request.params["request_id"], request.body.reason))


@api.route("GET", "/v1/admin/after-sales/{request_id}", auth="admin", response=AdminAfterSaleOut, errors=(404,),
           summary="One after-sales request with its current refund's status")
def get_after_sale(request: ApiRequest) -> AdminAfterSaleOut:
    return admin_after_sale_out(after_sales.get_request(request.params["request_id"]))
