"""Subscribe-message quota: what `wx.requestSubscribeMessage` returned, and what is left."""
from __future__ import annotations

from pydantic import Field

from chalicelib.schemas.common import RequestModel, ResponseModel
from chalicelib.subscribe_templates import TEMPLATE_ID_PATTERN


class SubscriptionBody(RequestModel):
    template_id: str = Field(min_length=1, max_length=64, pattern=TEMPLATE_ID_PATTERN,
                             description="one of the template ids GET /v1/me/subscriptions lists "
                                         "(any other: 400 unknown_template)")
    accepted: bool = Field(description="true when the user chose 'accept' for this template; false "
                                       "('reject', 'ban', 'filter') records nothing")
    request_id: str | None = Field(default=None, min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$",
                                   description="optional: a retry with the same id counts once; without it "
                                               "every accepted call is one grant, as in WeChat")


class SubscriptionOut(ResponseModel):
    template_id: str
    kinds: list[str] = Field(description="the events this template is used for: paid, shipped, refunded, "
                                         "group_buy_result, pay_reminder")
    remaining: int = Field(description="messages of this template we may still send the user (one per acceptance)")


class SubscriptionList(ResponseModel):
    items: list[SubscriptionOut] = Field(description="every configured template (ask the user for these ids "
                                                     "with wx.requestSubscribeMessage), with the quota left")
