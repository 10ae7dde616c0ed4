"""`POST /v1/events`: a batch of tracking events from the mini-program."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from chalicelib.domain.analytics import MAX_EVENTS_PER_BATCH
from chalicelib.schemas.catalog import Id
from chalicelib.schemas.common import Moment, RequestModel, ResponseModel

EventId = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$",
                               description="the client's id of the event (a UUID, say): a resent event counts once")]


class _EventBase(RequestModel):
    event_id: EventId
    at: Moment = Field(description="client time, ISO 8601 with offset; counted at it when within 7 days before "
                                   "and 5 minutes after the server's time, else at the server's time")
    source: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$",
                               description="the mini-program's own traffic source tag (campaign, poster, ...)")
    scene: int | None = Field(default=None, ge=1000, le=9999,
                              description="WeChat's scene value of the launch (1007 a shared card, 1047 a code, ...)")
    page: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_/.\-?=&]+$")


class PageView(_EventBase):
    type: Literal["page_view"]


class ProductView(_EventBase):
    type: Literal["product_view"]
    product_id: Id


class AddToCart(_EventBase):
    type: Literal["add_to_cart"]
    product_id: Id
    sku_id: Id | None = None
    quantity: int = Field(default=1, ge=1, le=99)


class Share(_EventBase):
    type: Literal["share"]
    product_id: Id | None = None


EventIn = Annotated[Union[PageView, ProductView, AddToCart, Share], Field(discriminator="type")]


class EventBatchBody(RequestModel):
    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)

    @model_validator(mode="after")
    def _ids_unique(self) -> "EventBatchBody":
        seen: set[str] = set()
        for event in self.events:
            if event.event_id in seen:
                raise ValueError(f"event_id {event.event_id} appears twice in the batch")
            seen.add(event.event_id)
        return self


class EventsAccepted(ResponseModel):
    received: int
    stored: int = Field(description="events new to the server (each counted once, within a minute or so)")
    duplicates: int = Field(description="events already received (a resent batch): not counted again")
