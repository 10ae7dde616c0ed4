"""The cart's bodies and answer (API.md: GET /v1/cart and its changes)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from chalicelib.domain.pricing import MAX_LINE_QUANTITY
from chalicelib.schemas.common import RequestModel, ResponseModel

SkuId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")


class AddToCartBody(RequestModel):
    sku_id: str = SkuId
    quantity: int = Field(ge=1, le=MAX_LINE_QUANTITY)


class CartLinePatch(RequestModel):
    quantity: int | None = Field(default=None, ge=1, le=MAX_LINE_QUANTITY)
    selected: bool | None = None
    sku_id_new: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")

    @model_validator(mode="after")
    def _something_to_change(self) -> "CartLinePatch":
        if not self.model_fields_set:
            raise ValueError("send at least one of quantity, selected, sku_id_new")
        return self


class CartLineOut(ResponseModel):
    sku_id: str
    product_id: str | None
    name: str | None
    specs: dict[str, str]
    price_fen: int
    quantity: int
    selected: bool
    subtotal_fen: int
    problem: Literal["off_sale", "out_of_stock", "over_limit"] | None
    available: int


class CartOut(ResponseModel):
    lines: list[CartLineOut]
    goods_fen: int
