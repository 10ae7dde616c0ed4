"""The order-timers queue message."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


class OrderTimer(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    order_id: str
    kind: Literal["pay_deadline"] = "pay_deadline"
    due_at: datetime
