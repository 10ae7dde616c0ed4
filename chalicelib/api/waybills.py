"""Merchant e-waybill routes (物流助手): create and ship, read, cancel before pickup; carriers."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib import clock
from chalicelib.api.http import ApiBlueprint, ApiRequest, Reply
from chalicelib.lazy import lazy_module, lazy_names
CarrierList, CarrierQuery, WaybillBody, WaybillOut = lazy_names(
    "chalicelib.schemas.logistics", "CarrierList", "CarrierQuery", "WaybillBody", "WaybillOut")

if TYPE_CHECKING:
    from chalicelib.storage.orders import Order
    from chalicelib.storage.waybills import Waybill

waybills = lazy_module("chalicelib.services.waybills")

api = ApiBlueprint(__name__, tag="logistics")


def waybill_out(waybill: Waybill, order: Order) -> WaybillOut:
    when = lambda moment: clock.to_iso(moment) if moment else None  # noqa: E731
    return WaybillOut(
        order_id=waybill.order_id, order_status=order.status, status=waybill.status, wx_order_id=waybill.wx_order_id,
        waybill_id=waybill.waybill_id, delivery_id=waybill.delivery_id, delivery_name=waybill.delivery_name,
        biz_id=waybill.biz_id, service_type=waybill.service_type, service_name=waybill.service_name,
        waybill_data=waybill.waybill_data or {}, shipped=waybill.shipped, created_at=clock.to_iso(waybill.created_at),
        waybill_at=when(waybill.waybill_at), cancelled_at=when(waybill.cancelled_at),
        picked_up_at=when(waybill.picked_up_at), delivered_at=when(waybill.delivered_at),
        last_event_at=when(waybill.last_event_at), last_push_at=when(waybill.last_push_at),
        last_poll_at=when(waybill.last_poll_at), watch_at=when(waybill.watch_at), anomaly=waybill.anomaly,
        errcode=waybill.errcode, errmsg=waybill.errmsg)


@api.route("POST", "/v1/admin/orders/{order_id}/waybill", auth="admin", body=WaybillBody, response=WaybillOut,
           status=201, also=(200,), errors=(404, 409, 502),
           summary="Make the order's e-waybill through WeChat (sender from LOGISTICS_SENDER, receiver from the "
                   "order) and ship the order with it; repeating the request finishes or answers the same waybill "
                   "(200)")
def create_waybill(request: ApiRequest) -> Reply:
    waybill, order, created = waybills.create_waybill(request.params["order_id"], request.body)
    return Reply(waybill_out(waybill, order), 201 if created else 200)


@api.route("GET", "/v1/admin/orders/{order_id}/waybill", auth="admin", response=WaybillOut, errors=(404,),
           summary="The order's e-waybill with its label data, tracking summary and anomaly")
def get_waybill(request: ApiRequest) -> WaybillOut:
    return waybill_out(*waybills.get_waybill(request.params["order_id"]))


@api.route("POST", "/v1/admin/orders/{order_id}/waybill/cancel", auth="admin", response=WaybillOut,
           errors=(404, 409, 502),
           summary="Cancel the e-waybill before pickup (409 waybill_picked_up after); again: unchanged")
def cancel_waybill(request: ApiRequest) -> WaybillOut:
    return waybill_out(*waybills.cancel_waybill(request.params["order_id"]))


@api.route("GET", "/v1/admin/carriers", auth="admin", query=CarrierQuery, response=CarrierList, errors=(502,),
           summary="Carriers of WeChat's logistics service and their service types (cached for an hour)")
def list_carriers(request: ApiRequest) -> CarrierList:
    carriers, fetched_at = waybills.list_carriers(refresh=request.query.refresh)
    return CarrierList(items=[{"delivery_id": c.delivery_id, "delivery_name": c.delivery_name,
                               "can_use_cash": c.can_use_cash, "cash_biz_id": c.cash_biz_id,
                               "services": [{"service_type": t, "service_name": n} for t, n in c.services]}
                              for c in carriers],
                       fetched_at=clock.to_iso(clock.from_epoch(fetched_at)))
