"""Bargains (砍价): start one, help cut it, see the price reached."""
from __future__ import annotations

from pydantic import Field

from chalicelib.schemas.common import RequestModel, ResponseModel

Id = dict(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")


class StartBargainBody(RequestModel):
    activity_id: str = Field(**Id)
    sku_id: str = Field(**Id)


class CutOut(ResponseModel):
    nickname: str | None
    avatar_url: str | None
    amount_fen: int
    created_at: str


class BargainOut(ResponseModel):
    bargain_id: str
    activity_id: str
    sku_id: str
    start_price_fen: int
    floor_price_fen: int
    price_fen: int = Field(description="the price reached: the sponsor buys one unit at it through POST /v1/orders "
                                       "with bargain_id")
    cuts_count: int
    helpers_to_floor: int
    at_floor: bool
    expires_at: str
    expired: bool
    ordered: bool = Field(description="an order holds the price (it is used once)")
    sponsor: dict[str, str | None] = Field(description="{nickname, avatar_url}")
    cuts: list[CutOut] = Field(description="each helper's cut, oldest first")
    your_cut_fen: int | None = Field(default=None, description="what the caller cut, if they did")
