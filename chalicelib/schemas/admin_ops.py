"""Bodies of the merchant operations of issue 16: accounts, audit, dashboard, the admin product
list, categories, stores, batch and split shipments, address changes, remarks, merchant refunds."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from chalicelib.schemas.addresses import Name, Region, _mobile, _one_line, _postal
from chalicelib.schemas.common import QueryModel, RequestModel, ResponseModel
from typing import Annotated

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
Carrier = Annotated[str, Field(min_length=1, max_length=32, description=(
    "e.g. 顺丰速运; for express orders one of 顺丰速运, 中通快递, 圆通速递, 韵达速递, 申通快递, 京东物流, 邮政EMS "
    "or WeChat's delivery_id (e.g. SF), else unknown_carrier"))]
TrackingNo = Annotated[str, Field(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9\-]+$")]
Text = Annotated[str, Field(min_length=1, max_length=200), _one_line]
AdminRole = Literal["owner", "staff"]
Password = Annotated[str, Field(min_length=8, max_length=128, description="8-128 characters")]


class PatchBody(RequestModel):
    """A PATCH body: at least one field must be sent."""

    @model_validator(mode="after")
    def _something(self):
        if not self.model_fields_set:
            raise ValueError(f"send at least one of {', '.join(type(self).model_fields)}")
        return self


# ------------------------------------------------------------------------------ accounts

class AccountCreate(RequestModel):
    username: Annotated[str, Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")]
    password: Password
    role: AdminRole


class AccountPatch(PatchBody):
    role: AdminRole | None = None
    password: Password | None = None
    disabled: bool | None = None


class AccountOut(ResponseModel):
    username: str
    role: str
    disabled: bool
    created_at: str | None


class AccountList(ResponseModel):
    items: list[AccountOut]


class MeOut(ResponseModel):
    username: str
    role: str


# ------------------------------------------------------------------------------ audit

class AuditQuery(QueryModel):
    actor: str | None = Field(default=None, min_length=1, max_length=64, description="an admin username")
    target: str | None = Field(default=None, min_length=1, max_length=200, description="e.g. order:<order_id>")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=2048)


class AuditOut(ResponseModel):
    audit_id: str
    at: str
    actor: str
    role: str
    action: str = Field(description='the route, e.g. "PATCH /v1/admin/orders/{order_id}/address"')
    target: str = Field(description="what was changed, e.g. order:<order_id>, sku:<sku_id>")
    before: Any = None
    after: Any = None
    request_id: str | None = None


class AuditList(ResponseModel):
    items: list[AuditOut]
    next_cursor: str | None


# ------------------------------------------------------------------------------ dashboard

class DashboardToday(ResponseModel):
    date: str
    orders: int
    paid_orders: int
    gmv_fen: int


class DashboardOut(ResponseModel):
    today: DashboardToday
    pending_shipments: int = Field(description="orders paid and not shipped")
    open_after_sales: int = Field(description="after-sales requests waiting for the merchant (requested, approved, "
                                              "disputed)")
    open_alerts: int = Field(description="alerts raised in the last 24 hours")


# ------------------------------------------------------------------------------ products

class AdminProductQuery(QueryModel):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=2048)
    category_id: Id | None = None
    on_sale: bool | None = None


class AdminProductSku(ResponseModel):
    sku_id: str
    specs: dict[str, str]
    price_fen: int
    on_sale: bool
    available: int
    reserved: int
    sold: int
    allocated: int
    low_stock_threshold: int | None


class AdminProductItem(ResponseModel):
    product_id: str
    name: str
    category_id: str
    on_sale: bool
    virtual: bool
    images: list[str]
    skus: list[AdminProductSku]


class AdminProductList(ResponseModel):
    items: list[AdminProductItem]
    next_cursor: str | None


# ------------------------------------------------------------------------------ categories

class AdminCategoryNode(ResponseModel):
    category_id: str
    name: str
    parent_id: str | None
    level: int
    hidden: bool
    sort_order: int = 0
    children: list["AdminCategoryNode"]


class AdminCategoryTree(ResponseModel):
    items: list[AdminCategoryNode]


class CategoryPatch(PatchBody):
    name: Annotated[str, Field(min_length=1, max_length=40), _one_line] | None = None
    parent_id: Id | Literal[""] | None = Field(default=None, description='the new parent; "" makes it a root')
    hidden: bool | None = None
    sort_order: int | None = Field(default=None, ge=0, le=100000)



# ------------------------------------------------------------------------------ stores

Hours = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]$",
                             description='opening hours, e.g. "08:00-22:00"')]
StorePhone = Annotated[str, Field(min_length=5, max_length=20, pattern=r"^[0-9+\-() ]+$")]


class StoreCreate(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=40), _one_line]
    address: Annotated[str, Field(min_length=1, max_length=120), _one_line]
    lat: float = Field(ge=-90, le=90, description="WGS-84")
    lng: float = Field(ge=-180, le=180)
    phone: StorePhone | None = None
    hours: Hours = "09:00-21:00"
    hidden: bool = False
    sort_order: int = Field(default=0, ge=0, le=100000)

    @field_validator("lat", "lng", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class StorePatch(PatchBody):
    name: Annotated[str, Field(min_length=1, max_length=40), _one_line] | None = None
    address: Annotated[str, Field(min_length=1, max_length=120), _one_line] | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)
    phone: StorePhone | None = None
    hours: Hours | None = None
    hidden: bool | None = None
    sort_order: int | None = Field(default=None, ge=0, le=100000)

    _number = field_validator("lat", "lng", mode="before")(StoreCreate._number.__func__)


class AdminStoreOut(ResponseModel):
    store_id: str
    name: str
    address: str
    lat: float | None
    lng: float | None
    phone: str | None
    hours: str
    hidden: bool
    sort_order: int


class AdminStoreList(ResponseModel):
    items: list[AdminStoreOut]


# ------------------------------------------------------------------------------ orders

class BatchShipItem(RequestModel):
    order_id: Id
    carrier: Carrier
    tracking_no: TrackingNo


class BatchShipBody(RequestModel):
    shipments: list[BatchShipItem] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _distinct(self) -> "BatchShipBody":
        ids = [item.order_id for item in self.shipments]
        if len(ids) != len(set(ids)):
            raise ValueError("each order_id at most once per batch")
        return self


class BatchShipResult(ResponseModel):
    order_id: str
    ok: bool
    status: str | None = None
    code: str | None = None
    message: str | None = None


class BatchShipReply(ResponseModel):
    results: list[BatchShipResult]


class LineQuantity(RequestModel):
    sku_id: Id
    quantity: int = Field(ge=1, le=100000)


def _distinct_lines(lines: list[LineQuantity]) -> list[LineQuantity]:
    skus = [line.sku_id for line in lines]
    if len(skus) != len(set(skus)):
        raise ValueError("each sku_id at most once")
    return lines


class ShipmentBody(RequestModel):
    lines: list[LineQuantity] = Field(min_length=1, max_length=50)
    carrier: Carrier
    tracking_no: TrackingNo

    _lines = field_validator("lines")(_distinct_lines)


class AddressChangeBody(RequestModel):
    name: Name
    phone: Annotated[str, Field(description="mainland mobile, 11 digits"), _mobile]
    province: Region
    city: Region
    district: Region
    detail: Annotated[str, Field(min_length=1, max_length=120), _one_line]
    postal_code: Annotated[str, Field(description="6 digits"), _postal] | None = None
    reason: Text


class RemarkBody(RequestModel):
    text: Annotated[str, Field(min_length=1, max_length=500), _one_line]


class MerchantRefundBody(RequestModel):
    request_id: Annotated[str, Field(min_length=8, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$",
                                     description="the client's key: the same request_id again answers the same "
                                                 "refund, never a second one")]
    lines: list[LineQuantity] = Field(min_length=1, max_length=50)
    reason: Text

    _lines = field_validator("lines")(_distinct_lines)
