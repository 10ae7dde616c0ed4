"""Tracking: the buyer's and the merchant's view of a shipment, and WeChat's path push.

The push (logistics.onPathUpdate) arrives through the mini-program's message push, in JSON and
plaintext mode: the query is signed with the push Token (`signature`, `timestamp`, `nonce`); a
GET with `echostr` is WeChat checking the URL. Success is the text `success`, as WeChat wants;
a push that does not verify is 401 and stores nothing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from chalicelib import clock
from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.api.waybills import waybill_out
from chalicelib.lazy import lazy_module, lazy_names
AdminTrackingOut, PushQuery, TrackingOut = lazy_names(
    "chalicelib.schemas.logistics", "AdminTrackingOut", "PushQuery", "TrackingOut")

if TYPE_CHECKING:
    from chalicelib.storage.tracking_events import TrackingEvent

tracking = lazy_module("chalicelib.services.tracking")

api = ApiBlueprint(__name__, tag="logistics")
PUSH_ROUTE = "/v1/wechat/logistics/notify"
PUSH_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "WeChat's logistics.onPathUpdate push (Event add_express_path), JSON, "
                                    "plaintext mode; the query carries signature, timestamp and nonce"}}}}}


def _events(events: list[TrackingEvent]) -> list[dict]:
    return [{"time": clock.to_iso(event.action_time), "action_type": event.action_type,
             "stage": tracking.stage(event.action_type), "description": event.action_msg} for event in events]


@api.route("GET", "/v1/orders/{order_id}/tracking", response=TrackingOut, errors=(404,),
           summary="The user's own order's shipment: waybill and tracking events, newest first")
def user_tracking(request: ApiRequest) -> TrackingOut:
    order, waybill, events = tracking.user_tracking(request.user_id, request.params["order_id"])
    when = lambda moment: clock.to_iso(moment) if moment else None  # noqa: E731
    summary = None if waybill is None else {
        "waybill_id": waybill.waybill_id, "delivery_id": waybill.delivery_id, "delivery_name": waybill.delivery_name,
        "status": waybill.status, "picked_up_at": when(waybill.picked_up_at),
        "delivered_at": when(waybill.delivered_at)}
    return TrackingOut(order_id=order.order_id, order_status=order.status, shipment=order.shipment,
                       waybill=summary, events=_events(events))


@api.route("GET", "/v1/admin/orders/{order_id}/tracking", auth="admin", response=AdminTrackingOut, errors=(404,),
           summary="An order's shipment: the waybill (pushes, polls, anomaly) and its tracking events")
def admin_tracking(request: ApiRequest) -> AdminTrackingOut:
    order, waybill, events = tracking.admin_tracking(request.params["order_id"])
    return AdminTrackingOut(order_id=order.order_id, order_status=order.status, shipment=order.shipment,
                            waybill=waybill_out(waybill, order) if waybill else None, events=_events(events))


@api.route("POST", PUSH_ROUTE, auth=None, query=PushQuery, doc=PUSH_DOC, errors=(400, 401, 413, 415),
           summary="WeChat's logistics path push (verified); answers the text success")
def logistics_push(request: ApiRequest) -> Response:
    tracking.receive_path_push(request.query, request.raw.raw_body or b"")
    return Response(body="success", status_code=200, headers={"Content-Type": "text/plain; charset=utf-8"})


@api.route("GET", PUSH_ROUTE, auth=None, query=PushQuery, errors=(401,),
           summary="WeChat checking the push URL: answers echostr when the signature verifies")
def logistics_push_check(request: ApiRequest) -> Response:
    tracking.verify_push(request.query)
    return Response(body=request.query.echostr or "", status_code=200,
                    headers={"Content-Type": "text/plain; charset=utf-8"})
