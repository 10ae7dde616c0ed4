"""E-waybills, carriers, tracking views and WeChat's logistics path push (docs/logistics.md)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.schemas.common import Moment, QueryModel, RequestModel, ResponseModel

DELIVERY_ID_PATTERN = r"^[A-Z][A-Z0-9_]{1,15}$"


class WaybillBody(RequestModel):
    delivery_id: str = Field(pattern=DELIVERY_ID_PATTERN, description="WeChat's carrier id (getAllDelivery), e.g. SF")
    biz_id: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$",
                        description="the merchant's account at the carrier (客户编码 / 月结账号), "
                                    "or the carrier's cash biz_id")
    service_type: int | None = Field(default=None, ge=0, le=99999,
                                     description="one of the carrier's service types (default: its first)")
    weight_kg: float | None = Field(default=None, gt=0, le=1000, description="default LOGISTICS_DEFAULT_WEIGHT_KG")
    space_x: float | None = Field(default=None, gt=0, le=1000, description="parcel length, cm")
    space_y: float | None = Field(default=None, gt=0, le=1000, description="parcel width, cm")
    space_z: float | None = Field(default=None, gt=0, le=1000, description="parcel height, cm")
    custom_remark: str | None = Field(default=None, min_length=1, max_length=200, description="printed on the label")
    expect_time: Moment | None = Field(default=None, description="when the courier should come (SF wants one)")
    insured_value_fen: int | None = Field(default=None, ge=1, le=1_000_000_000, description="insure for this much")


class WaybillOut(ResponseModel):
    order_id: str
    order_status: str
    status: str = Field(description="creating, created, delivered, failed or cancelled")
    wx_order_id: str = Field(description="the order_id WeChat knows this waybill by")
    waybill_id: str | None
    delivery_id: str
    delivery_name: str
    biz_id: str
    service_type: int
    service_name: str
    waybill_data: dict[str, str] = Field(description="WeChat's key/value pairs for printing the label")
    shipped: bool
    created_at: str
    waybill_at: str | None
    cancelled_at: str | None
    picked_up_at: str | None
    delivered_at: str | None
    last_event_at: str | None
    last_push_at: str | None
    last_poll_at: str | None
    watch_at: str | None = Field(description="the anomaly deadline while watched")
    anomaly: dict[str, Any] | None = Field(description="the shipment's one anomaly alert: {kind, at, deadline}")
    errcode: int | None
    errmsg: str | None


class CarrierService(ResponseModel):
    service_type: int
    service_name: str


class CarrierOut(ResponseModel):
    delivery_id: str
    delivery_name: str
    can_use_cash: bool
    cash_biz_id: str | None
    services: list[CarrierService]


class CarrierList(ResponseModel):
    items: list[CarrierOut]
    fetched_at: str


class TrackingEventOut(ResponseModel):
    time: str
    action_type: int
    stage: str = Field(description="picked_up, pickup_failed, courier_assigned, in_transit, out_for_delivery, "
                                   "delivered, delivery_failed, cancelled, held or other")
    description: str


class TrackingWaybill(ResponseModel):
    waybill_id: str | None
    delivery_id: str
    delivery_name: str
    status: str
    picked_up_at: str | None
    delivered_at: str | None


class TrackingOut(ResponseModel):
    order_id: str
    order_status: str
    shipment: dict[str, Any] | None = Field(description="{carrier, tracking_no, shipped_at} once shipped")
    waybill: TrackingWaybill | None
    events: list[TrackingEventOut] = Field(description="newest first")


class AdminTrackingOut(ResponseModel):
    order_id: str
    order_status: str
    shipment: dict[str, Any] | None
    waybill: WaybillOut | None
    events: list[TrackingEventOut]


class PushQuery(QueryModel):
    """The message push's query: WeChat signs it (and may add parameters of its own)."""
    model_config = ConfigDict(strict=False, extra="ignore", str_strip_whitespace=True, defer_build=True)

    signature: str | None = Field(default=None, max_length=64)
    timestamp: str | None = Field(default=None, max_length=16)
    nonce: str | None = Field(default=None, max_length=64)
    echostr: str | None = Field(default=None, max_length=256)


class PushAction(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", defer_build=True)

    ActionTime: int = Field(gt=0, lt=2 ** 32)
    ActionType: int = Field(ge=0, lt=10 ** 7)
    ActionMsg: str = Field(default="", max_length=1024)


class PathPush(BaseModel):
    """logistics.onPathUpdate in JSON (the message push's data format set to JSON, plaintext mode)."""
    model_config = ConfigDict(strict=True, extra="ignore", defer_build=True)

    MsgType: str = Field(max_length=32)
    Event: str = Field(max_length=64)
    DeliveryID: str | None = Field(default=None, max_length=32)
    WayBillId: str | None = Field(default=None, min_length=1, max_length=64)
    OrderId: str | None = Field(default=None, min_length=1, max_length=512)
    Version: int | None = None
    Count: int | None = None
    Actions: list[PushAction] = Field(default_factory=list, max_length=500)


class CarrierQuery(QueryModel):
    refresh: bool = Field(default=False, description="ask WeChat again instead of the cached table")
