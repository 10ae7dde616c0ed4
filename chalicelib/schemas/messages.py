"""Queue message bodies. Producers and consumers share these, so a message is checked both ways."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SubscribeMessageJob(BaseModel):
    """One WeChat subscribe message to send (the notifications queue)."""
    model_config = ConfigDict(extra="forbid", defer_build=True)

    kind: Literal["subscribe_message"] = "subscribe_message"
    message_key: str = Field(min_length=1, max_length=200,
                             description="natural idempotency key, e.g. order_shipped#<order_id>")
    user_id: str
    template_id: str = Field(min_length=1)
    page: str | None = None
    data: dict[str, dict[str, str]] = Field(description='{"thing1": {"value": "..."}}, as WeChat wants it')
