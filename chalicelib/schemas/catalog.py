"""Catalog bodies and queries: categories, products with SKUs, pickup stores, merchant edits."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from chalicelib.domain.catalog import DEFAULT_SORT
from chalicelib.schemas.common import QueryModel, RequestModel, ResponseModel

StockStatus = Literal["in_stock", "low", "sold_out"]
Sort = Literal["sales", "price_asc", "price_desc", "newest"]
MAX_PRICE_FEN = 10 ** 9  # ¥10,000,000: far above any real price, far below the 12-digit sort keys

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
HttpsUrl = Annotated[str, StringConstraints(max_length=500, pattern=r"^https://\S+$")]
Keyword = Annotated[str, StringConstraints(min_length=1, max_length=20)]
SpecName = Annotated[str, StringConstraints(min_length=1, max_length=20)]
SpecValue = Annotated[str, StringConstraints(min_length=1, max_length=40)]
Specs = Annotated[dict[SpecName, SpecValue], Field(max_length=5, description='e.g. {"重量": "5斤装"}')]
PriceFen = Annotated[int, Field(gt=0, le=MAX_PRICE_FEN)]


# ------------------------------------------------------------------------------------ reads

class ProductListQuery(QueryModel):
    category_id: Id | None = Field(default=None, description="this category and everything below it")
    q: str | None = Field(default=None, max_length=50, description="search name and keywords (Chinese or ASCII)")
    min_price_fen: int | None = Field(default=None, ge=0, le=MAX_PRICE_FEN, description="cheapest on-sale SKU >= this")
    max_price_fen: int | None = Field(default=None, ge=0, le=MAX_PRICE_FEN, description="cheapest on-sale SKU <= this")
    sort: Sort = Field(default=DEFAULT_SORT, description="sales and newest: highest first")
    limit: int = Field(default=20, ge=1, le=50)
    cursor: str | None = Field(default=None, max_length=2048, description="next_cursor of the previous page")

    @field_validator("q", "category_id", "cursor", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: object) -> object:
        return (value.strip() or None) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _range_in_order(self) -> "ProductListQuery":
        if (self.min_price_fen is not None and self.max_price_fen is not None
                and self.min_price_fen > self.max_price_fen):
            raise ValueError("min_price_fen must not exceed max_price_fen")
        return self


class ListQuery(QueryModel):
    limit: int = Field(default=20, ge=1, le=50)
    cursor: str | None = Field(default=None, max_length=2048)


class ProductSummary(ResponseModel):
    product_id: str
    name: str
    cover_image: str | None
    min_price_fen: int = Field(description="price of the cheapest on-sale SKU")
    market_price_fen: int | None = Field(description="that SKU's market (strike-through) price")
    sales_count: int
    virtual: bool


class ProductPage(ResponseModel):
    items: list[ProductSummary]
    next_cursor: str | None


class SkuView(ResponseModel):
    sku_id: str
    specs: dict[str, str]
    price_fen: int
    market_price_fen: int | None
    stock_status: StockStatus
    available: int
    on_sale: bool


class ProductDetail(ResponseModel):
    product_id: str
    name: str
    category_id: str
    category_path: list[str]
    description: str | None
    images: list[str]
    video_url: str | None
    keywords: list[str]
    virtual: bool = Field(description="needs no shipping (delivery_method none)")
    on_sale: bool
    sales_count: int
    created_at: str
    skus: list[SkuView]


class CategoryNode(ResponseModel):
    category_id: str
    name: str
    parent_id: str | None
    level: int
    children: list["CategoryNode"]


class CategoryTree(ResponseModel):
    items: list[CategoryNode]


class StoreQuery(ListQuery):
    lat: float | None = Field(default=None, ge=-90, le=90, description="the buyer's latitude (WGS-84, wx.getLocation)")
    lng: float | None = Field(default=None, ge=-180, le=180, description="with lat: stores nearest first")
    sku_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$",
                               description="say how many units of this SKU each store's shelf holds")

    @model_validator(mode="after")
    def _both_or_neither(self) -> "StoreQuery":
        if (self.lat is None) != (self.lng is None):
            raise ValueError("send lat and lng together")
        return self


class StoreView(ResponseModel):
    store_id: str
    name: str
    address: str
    hours: str
    phone: str | None
    lat: float | None = None
    lng: float | None = None
    distance_m: int | None = Field(default=None, description="from lat/lng, when given and the store has coordinates")
    sku_units: int | None = Field(default=None, description="with sku_id: units on the store's shelf (its POS count); "
                                                            "null when the store never reported that SKU")


class StorePage(ResponseModel):
    items: list[StoreView]
    next_cursor: str | None


# ---------------------------------------------------------------------------- merchant edits

class CategoryCreate(RequestModel):
    name: str = Field(min_length=1, max_length=30)
    parent_id: Id | None = Field(default=None, description="absent for a top-level category; 3 levels at most")
    sort_order: int = Field(default=0, ge=0, le=100_000)


class CategoryCreated(ResponseModel):
    category_id: str
    name: str
    parent_id: str | None
    level: int


class SkuCreate(RequestModel):
    specs: Specs = Field(default_factory=dict)
    price_fen: PriceFen
    market_price_fen: PriceFen | None = None
    stock: int = Field(ge=0, le=10_000_000)
    low_stock_threshold: int = Field(default=0, ge=0, le=10_000_000)


class ProductFields(RequestModel):
    """What a merchant may set on a product (shared by create and PATCH)."""
    description: str | None = Field(default=None, max_length=2000)
    images: list[HttpsUrl] | None = Field(default=None, max_length=20)
    video_url: HttpsUrl | Literal[""] | None = Field(default=None, description='"" removes the video')
    keywords: list[Keyword] | None = Field(default=None, max_length=10, description="extra search words")


class ProductCreate(ProductFields):
    name: str = Field(min_length=1, max_length=60)
    category_id: Id
    virtual: bool = False
    skus: list[SkuCreate] = Field(min_length=1, max_length=50)


class ProductPatch(ProductFields):
    name: str | None = Field(default=None, min_length=1, max_length=60)
    category_id: Id | None = None
    on_sale: bool | None = None


class SkuPatch(RequestModel):
    price_fen: PriceFen | None = None
    market_price_fen: int | None = Field(default=None, ge=0, le=MAX_PRICE_FEN, description="0 removes it")
    specs: Specs | None = None
    low_stock_threshold: int | None = Field(default=None, ge=0, le=10_000_000)
    on_sale: bool | None = None


class AdminSkuView(ResponseModel):
    sku_id: str
    product_id: str
    specs: dict[str, str]
    price_fen: int
    market_price_fen: int | None
    low_stock_threshold: int
    on_sale: bool
    stock_status: StockStatus
    available: int
    allocated: int
    reserved: int
    sold: int
    stock_in: int = Field(description="== available + allocated + reserved + sold")


class ProductCreated(ResponseModel):
    product_id: str
    skus: list[AdminSkuView]


class AdminProductDetail(ProductDetail):
    skus: list[AdminSkuView]  # type: ignore[assignment]
