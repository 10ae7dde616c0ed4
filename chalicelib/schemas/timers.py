"""The order-timers queue's messages: a pay-deadline timer or reminder, a low-stock check, or a
group-buy's deadline."""
from __future__ import annotations

import json

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


class OrderTimer(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    order_id: str
    kind: Literal["pay_deadline", "pay_reminder"] = "pay_deadline"
    due_at: datetime


class LowStockCheck(BaseModel):
    """Check these SKUs against their low-stock thresholds after an order took units: only a
    read after the order's transaction can tell whether it crossed one (concurrent orders all
    read the same stock before), so the check runs off the request."""
    model_config = ConfigDict(extra="forbid", defer_build=True)

    kind: Literal["low_stock_check"]
    sku_ids: list[str]


class GroupTimer(BaseModel):
    """A group-buy's deadline (services/group_buys.py): its leader's time to pay, then its window."""
    model_config = ConfigDict(extra="forbid", defer_build=True)

    kind: Literal["group_expiry"] = "group_expiry"
    group_id: str
    due_at: datetime


def parse_order_message(body: str) -> OrderTimer | LowStockCheck | GroupTimer:
    """The message by its `kind` (pay-deadline timers are the default kind)."""
    fields = json.loads(body)
    if isinstance(fields, dict) and fields.get("kind") == "low_stock_check":
        return LowStockCheck.model_validate(fields)
    if isinstance(fields, dict) and fields.get("kind") == "group_expiry":
        return GroupTimer.model_validate(fields)
    return OrderTimer.model_validate(fields)
