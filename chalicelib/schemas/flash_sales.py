"""Flash sales: the merchant's sale, the buyer's entry and ticket, and the queue message."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chalicelib.domain.flash_sales import MAX_PER_USER_LIMIT, MAX_QUANTITY, MAX_SHARDS
from chalicelib.domain.pricing import MAX_LINE_QUANTITY
from chalicelib.schemas.common import Moment, QueryModel, RequestModel, ResponseModel

Id = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
PriceFen = Annotated[int, Field(ge=1, le=100_000_000)]


class _Window(RequestModel):
    @model_validator(mode="after")
    def _ends_after_start(self):
        starts, ends = getattr(self, "starts_at", None), getattr(self, "ends_at", None)
        if starts is not None and ends is not None and ends <= starts:
            raise ValueError("ends_at must be after starts_at")
        return self


class CreateFlashSaleBody(_Window):
    sku_id: str = Id
    price_fen: PriceFen
    quantity: int = Field(ge=1, le=MAX_QUANTITY, description="units carved out of the SKU's available stock")
    per_user_limit: int = Field(ge=1, le=MAX_PER_USER_LIMIT, description="units one user may win")
    starts_at: Moment
    ends_at: Moment
    shards: int = Field(default=1, ge=1, le=MAX_SHARDS,
                        description="stock counters the units are spread over (hot sales: 8; docs/decisions.md)")
    request_id: str | None = Field(default=None, min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$",
                                   description="client-made UUID; repeating it answers the same sale (200), "
                                               "so a double click never carves the units twice")

    @model_validator(mode="after")
    def _shards_not_above_quantity(self):
        if self.shards > self.quantity:
            raise ValueError("shards may not exceed quantity")
        return self


class UpdateFlashSaleBody(_Window):
    """Price, limit and start may change before the sale starts; the end, until it ends."""
    price_fen: PriceFen | None = None
    per_user_limit: int | None = Field(default=None, ge=1, le=MAX_PER_USER_LIMIT)
    starts_at: Moment | None = None
    ends_at: Moment | None = None


class AdminSaleListQuery(QueryModel):
    state: Literal["active", "ending", "ended"] = "active"
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=2048)


class PublicSaleListQuery(QueryModel):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=2048)


class EntryBody(RequestModel):
    sku_id: str = Id
    quantity: int = Field(ge=1, le=MAX_LINE_QUANTITY)
    request_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$",
                            description="client-made UUID; repeating it answers the same ticket")
    delivery_method: Literal["express", "pickup", "none"] | None = Field(
        default=None, description="default: none for virtual goods, else express to address_id or the default "
                                  "address, or pickup at store_id")
    address_id: str | None = Field(default=None, min_length=1, max_length=64)
    store_id: str | None = Field(default=None, min_length=1, max_length=64)


class FlashSaleOut(ResponseModel):
    sale_id: str
    sku_id: str
    product_id: str
    name: str
    specs: dict[str, str]
    price_fen: int
    original_price_fen: int
    quantity: int
    remaining: int
    per_user_limit: int
    starts_at: str
    ends_at: str
    status: Literal["upcoming", "active", "sold_out", "ended"]


class FlashSaleList(ResponseModel):
    items: list[FlashSaleOut]
    next_cursor: str | None


class AdminFlashSaleOut(FlashSaleOut):
    shards: int
    remaining_by_shard: list[int]
    queued: int = Field(description="tickets waiting for their turn")
    won: int = Field(description="tickets that became orders")
    lost: int = Field(description="tickets that came after the last unit")
    rejects: dict[str, int] = Field(description="refused entries by reason")
    created_at: str
    settled_at: str | None = Field(description="when the unsold units went back to the SKU")
    unsold_returned: int | None


class AdminFlashSaleList(ResponseModel):
    items: list[AdminFlashSaleOut]
    next_cursor: str | None


class TicketOut(ResponseModel):
    ticket_id: str
    sale_id: str
    sku_id: str
    quantity: int
    status: Literal["queued", "won", "lost"]
    order_id: str | None = Field(default=None, description="the pending_payment order, once won")
    created_at: str


class FlashEntryMessage(BaseModel):
    """The flash-entries queue message: the ticket is the whole state."""
    model_config = ConfigDict(extra="forbid", defer_build=True)

    ticket_id: str
    sale_id: str
