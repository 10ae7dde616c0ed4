"""`GET /v1/admin/reports/{name}`: the query, and each report's shape."""
from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from chalicelib.domain.reports import check_range
from chalicelib.schemas.common import QueryModel, ResponseModel


class ReportQuery(QueryModel):
    model_config = ConfigDict(strict=False, extra="forbid", str_strip_whitespace=True, defer_build=True,
                              populate_by_name=True)

    from_: date = Field(alias="from", description="first day, YYYY-MM-DD (Asia/Shanghai)")
    to: date = Field(description="last day, inclusive; at most 92 days after `from`")
    format: Literal["json", "csv"] = Field(default="json", description="csv: text/csv, one row per item")

    @field_validator("to")
    @classmethod
    def _range(cls, value: date, info: ValidationInfo) -> date:
        first = info.data.get("from_")
        if first is not None:
            check_range(first, value)
        return value


class ProductReportQuery(ReportQuery):
    sort: Literal["paid_fen", "paid_units", "views", "add_to_cart"] = "paid_fen"
    limit: int = Field(default=50, ge=1, le=200)


# --- sales ---

class SalesDay(ResponseModel):
    date: str
    orders: int = Field(description="orders placed that day")
    paid_orders: int = Field(description="orders paid that day")
    gmv_fen: int = Field(description="paid amounts that day")
    refund_fen: int = Field(description="money refunded that day")
    aov_fen: int = Field(description="gmv_fen / paid_orders, rounded down (0 without paid orders)")


class SalesReport(ResponseModel):
    items: list[SalesDay]
    totals: SalesDay = Field(description="the range's sums (date: 'total'; aov over the whole range)")


# --- funnel ---

class FunnelStages(ResponseModel):
    exposure: int = Field(description="users with any tracked event")
    click: int = Field(description="users who viewed a product")
    cart: int = Field(description="users who added to the cart")
    order: int = Field(description="users who placed an order")
    paid: int = Field(description="users who paid an order")


class FunnelDay(ResponseModel):
    date: str
    pv: int
    product_views: int
    add_to_cart: int
    shares: int
    orders: int
    paid_orders: int
    stages: FunnelStages = Field(description="unique users per stage that day")


class FunnelSource(ResponseModel):
    source: str = Field(description="the source tag, scene_<WeChat scene> or direct")
    pv: int
    product_views: int
    add_to_cart: int
    exposure: int = Field(description="sum over the days of each day's unique users")
    click: int
    cart: int


class FunnelReport(ResponseModel):
    items: list[FunnelDay]
    stages: FunnelStages = Field(description="sums over the range of each day's unique users")
    conversion_permille: FunnelStages = Field(description="each stage over exposure, in permille")
    sources: list[FunnelSource] = Field(description="by source, most page views first (orders carry no source)")


# --- products ---

class ProductRow(ResponseModel):
    rank: int
    product_id: str
    name: str | None = Field(description="null: no such product any more")
    views: int
    add_to_cart: int
    orders: int = Field(description="orders placed containing it")
    ordered_units: int
    paid_orders: int
    paid_units: int
    paid_fen: int = Field(description="what paying orders paid for its lines (after discounts)")


class ProductReport(ResponseModel):
    items: list[ProductRow]


# --- repurchase ---

class CohortRow(ResponseModel):
    cohort: str = Field(description="YYYY-MM of the customers' first payment")
    customers: int
    repurchased: int = Field(description="of them, paid for a second order (at any time)")
    rate_permille: int
    retention: list[int] = Field(description="customers paying again 1, 2, ... 12 months after the cohort's month")


class RepurchaseReport(ResponseModel):
    computed_on: str | None = Field(description="the nightly run the figures come from (null: none yet)")
    items: list[CohortRow]


# --- rfm ---

class SegmentRow(ResponseModel):
    segment: Literal["champions", "loyal", "new", "potential", "at_risk", "hibernating"]
    customers: int
    monetary_fen: int


class StageRow(ResponseModel):
    stage: Literal["introduction", "growth", "mature", "decline"]
    customers: int


class RfmThresholds(ResponseModel):
    recency_days: list[int] = Field(description="days since the last payment at the 20/40/60/80% marks")
    frequency: list[int]
    monetary_fen: list[int]


class RfmReport(ResponseModel):
    computed_on: str | None = Field(description="the latest nightly run within the range (null: none)")
    customers: int
    items: list[SegmentRow]
    stages: list[StageRow]
    thresholds: RfmThresholds
