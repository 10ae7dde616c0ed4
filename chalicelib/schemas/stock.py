"""Merchant stock changes, POS/warehouse syncs and alerts."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from chalicelib.schemas.common import QueryModel, RequestModel, ResponseModel

MAX_UNITS = 10_000_000
SkuId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")


class _DeltaOrAbsolute(RequestModel):
    delta: int | None = Field(default=None, ge=-MAX_UNITS, le=MAX_UNITS, description="units to add (negative removes)")
    absolute: int | None = Field(default=None, ge=0, le=MAX_UNITS, description="set available to this count")

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.delta is None) == (self.absolute is None):
            raise ValueError("send exactly one of delta and absolute")
        if self.delta == 0:
            raise ValueError("delta must not be 0")
        return self


class StockAdjustBody(_DeltaOrAbsolute):
    reason: str = Field(min_length=1, max_length=64, description="e.g. restock, damage, count, return")


class SyncItem(_DeltaOrAbsolute):
    sku_id: str = SkuId
    store_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$",
                                 description="a store's POS count for its own shelf (shown to buyers near the "
                                             "store); absent: the online stock")


class StockSyncBody(RequestModel):
    sync_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$",
                         description="the sender's id for this sync; a repeat applies nothing twice")
    source: str = Field(min_length=1, max_length=32, description="e.g. pos-xuhui, warehouse")
    items: list[SyncItem] = Field(min_length=1, max_length=100)

    @field_validator("items")
    @classmethod
    def _one_item_per_sku(cls, items: list[SyncItem]) -> list[SyncItem]:
        if len({(item.store_id, item.sku_id) for item in items}) != len(items):
            raise ValueError("each sku_id may appear once per sync (per store)")
        return items


class SyncItemResult(ResponseModel):
    sku_id: str
    status: Literal["applied", "already_applied", "sku_not_found", "store_not_found", "would_go_negative", "busy"]
    available: int | None = Field(description="online stock now; with store_id: the units on that store's shelf")
    store_id: str | None = None


class StockSyncResult(ResponseModel):
    sync_id: str
    items: list[SyncItemResult]


class AlertQuery(QueryModel):
    kind: Literal["low_stock", "payment_anomaly", "refund_failed", "refund_abnormal", "refund_stuck",
                  "shipping_upload_failed", "coupon_mismatch", "after_sales_respond_late", "after_sales_review_late",
                  "after_sales_disputed", "business_alert", "shipment_anomaly"] = "low_stock"
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=2048)


class AlertOut(ResponseModel):
    alert_id: str
    kind: str
    sku_id: str | None
    product_id: str | None
    available: int | None
    threshold: int | None
    created_at: str
    detail: dict[str, Any] | None = None


class AlertList(ResponseModel):
    items: list[AlertOut]
    next_cursor: str | None
