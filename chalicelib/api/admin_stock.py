"""Merchant stock routes: adjust one SKU, sync from a POS or warehouse, and alerts."""
from __future__ import annotations

from dataclasses import asdict

from chalicelib import clock
from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
AdminSkuView = lazy_names("chalicelib.schemas.catalog", "AdminSkuView")
(AlertList, AlertOut, AlertQuery, StockAdjustBody, StockSyncBody, StockSyncResult) = lazy_names(
    "chalicelib.schemas.stock",
    "AlertList", "AlertOut", "AlertQuery", "StockAdjustBody", "StockSyncBody", "StockSyncResult")

catalog_admin = lazy_module("chalicelib.services.catalog_admin")
stock = lazy_module("chalicelib.services.stock")

api = ApiBlueprint(__name__, tag="admin-stock")


@api.route("PATCH", "/v1/admin/skus/{sku_id}/stock", auth="admin", body=StockAdjustBody, response=AdminSkuView,
           errors=(404, 409), summary="Adjust available stock by a delta or to an absolute count, with a reason")
def adjust_stock(request: ApiRequest) -> AdminSkuView:
    sku_id, body = request.params["sku_id"], request.body
    change = stock.StockChange(sku_id, body.delta, body.absolute)
    stock.adjust_stock(sku_id, change, body.reason, request.principal.subject)
    return catalog_admin.admin_sku(sku_id)


@api.route("POST", "/v1/admin/stock-sync", auth="admin", body=StockSyncBody, response=StockSyncResult,
           summary="Apply counts or deltas from a POS or warehouse; a repeated sync_id applies nothing twice")
def sync_stock(request: ApiRequest) -> StockSyncResult:
    body = request.body
    results = stock.sync_stock(body.sync_id, body.source,
                               [stock.StockChange(item.sku_id, item.delta, item.absolute, item.store_id)
                                for item in body.items])
    return StockSyncResult(sync_id=body.sync_id, items=[asdict(result) for result in results])


@api.route("GET", "/v1/admin/alerts", auth="admin", query=AlertQuery, response=AlertList,
           summary="Alerts for the merchant, newest first (kind: low_stock)")
def list_alerts(request: ApiRequest) -> AlertList:
    query = request.query
    page, next_cursor = stock.list_alerts(query.kind, query.limit, query.cursor)
    return AlertList(items=[AlertOut(**{**asdict(alert), "created_at": clock.to_iso(alert.created_at)})
                            for alert in page], next_cursor=next_cursor)
