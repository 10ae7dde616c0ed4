"""The shipping-uploads queue message (which order's shipping info to tell WeChat) and its admin view.

Only the order id travels: the worker reads the order (its shipment, lines, payment and upload
state) when it runs, so a redelivered or re-queued message never carries stale facts.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.schemas.common import ResponseModel


class ShippingUploadJob(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    kind: Literal["shipping_upload"] = "shipping_upload"
    order_id: str = Field(min_length=1, max_length=64)
    reason: Literal["shipped", "paid", "sweep"] = Field(description="what queued it, for the logs")


class ShippingUploadOut(ResponseModel):
    """The admin view of an order's shipping-info upload to WeChat."""
    status: Literal["pending", "uploaded", "failed"]
    logistics_type: int = Field(description="WeChat's: 1 express, 3 virtual goods, 4 user pickup")
    attempts: int
    updated_at: str
    uploaded_at: str | None
    errcode: int | None = Field(description="WeChat's errcode of the last refusal, if any")
    errmsg: str | None
