"""Favorites and browsing history: bodies, queries and the product cards they list."""
from __future__ import annotations

from pydantic import Field, field_validator

from chalicelib.schemas.catalog import Id
from chalicelib.schemas.common import QueryModel, RequestModel, ResponseModel


class FavoriteBody(RequestModel):
    product_id: Id


class MemberListQuery(QueryModel):
    limit: int = Field(default=20, ge=1, le=50)
    cursor: str | None = Field(default=None, max_length=2048, description="next_cursor of the previous page")

    @field_validator("cursor", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: object) -> object:
        return (value.strip() or None) if isinstance(value, str) else value


class ProductCard(ResponseModel):
    product_id: str
    name: str
    cover_image: str | None
    min_price_fen: int | None = Field(description="price of the cheapest on-sale SKU; null when none is on sale")
    on_sale: bool = Field(description="false: off sale now (the page 404s), kept in the list greyed out")


class FavoriteOut(ProductCard):
    added_at: str


class FavoritePage(ResponseModel):
    items: list[FavoriteOut] = Field(description="newest first")
    next_cursor: str | None


class FavoriteRemoved(ResponseModel):
    product_id: str
    removed: bool = Field(description="false when it was not a favorite (nothing changed)")


class ViewedProduct(ProductCard):
    viewed_at: str = Field(description="the last view")


class HistoryPage(ResponseModel):
    items: list[ViewedProduct] = Field(description="last viewed first; the latest 100 views of the last 90 days")
    next_cursor: str | None
