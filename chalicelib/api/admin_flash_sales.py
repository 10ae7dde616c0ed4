"""Merchant flash-sale routes: create, change, stop, and watch a sale."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest, Reply
from chalicelib.lazy import lazy_module, lazy_names
(AdminFlashSaleList, AdminFlashSaleOut, AdminSaleListQuery, CreateFlashSaleBody,
 UpdateFlashSaleBody) = lazy_names(
    "chalicelib.schemas.flash_sales",
    "AdminFlashSaleList", "AdminFlashSaleOut", "AdminSaleListQuery", "CreateFlashSaleBody",
    "UpdateFlashSaleBody")

flash_sales = lazy_module("chalicelib.services.flash_sales")

api = ApiBlueprint(__name__, tag="admin-flash-sales")


@api.route("POST", "/v1/admin/flash-sales", auth="admin", body=CreateFlashSaleBody, response=AdminFlashSaleOut,
           status=201, also=(200,), errors=(404, 409),
           summary="Create a flash sale: its units move from the SKU's available stock to allocated "
                   "(a repeated request_id answers the same sale, 200)")
def create_sale(request: ApiRequest) -> Reply:
    sale, created = flash_sales.create_sale(request.body)
    return Reply(sale, 201 if created else 200)


@api.route("GET", "/v1/admin/flash-sales", auth="admin", query=AdminSaleListQuery, response=AdminFlashSaleList,
           summary="Flash sales by state (active or ended), soonest end first")
def list_sales(request: ApiRequest) -> AdminFlashSaleList:
    query = request.query
    items, next_cursor = flash_sales.list_for_admin(query.state, query.limit, query.cursor)
    return AdminFlashSaleList(items=items, next_cursor=next_cursor)


@api.route("GET", "/v1/admin/flash-sales/{sale_id}", auth="admin", response=AdminFlashSaleOut, errors=(404,),
           summary="The sale with remaining units, tickets queued / won / lost, and rejects by reason")
def get_sale(request: ApiRequest) -> AdminFlashSaleOut:
    return flash_sales.admin_view(request.params["sale_id"])


@api.route("PATCH", "/v1/admin/flash-sales/{sale_id}", auth="admin", body=UpdateFlashSaleBody,
           response=AdminFlashSaleOut, errors=(404, 409),
           summary="Change price, per-user limit or start before the sale starts; its end until it ends")
def update_sale(request: ApiRequest) -> AdminFlashSaleOut:
    return flash_sales.update_sale(request.params["sale_id"], request.body)


@api.route("POST", "/v1/admin/flash-sales/{sale_id}/stop", auth="admin", response=AdminFlashSaleOut, errors=(404,),
           summary="End the sale now: unsold units go back to available (again: 200, unchanged)")
def stop_sale(request: ApiRequest) -> AdminFlashSaleOut:
    return flash_sales.stop_sale(request.params["sale_id"])
