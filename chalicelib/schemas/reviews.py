"""Reviews: the buyer's body, the public list with the rating summary, the merchant's views."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from chalicelib.domain.pricing import MAX_LINES
from chalicelib.schemas.common import QueryModel, RequestModel, ResponseModel

MAX_TEXT = 500
MAX_IMAGES = 9
Id = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
ImageKey = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9/_\-.]*$")]
ReviewStatusName = Literal["visible", "hidden"]
ReportReason = Literal["spam", "offensive", "irrelevant", "privacy", "other"]


class ReviewLineIn(RequestModel):
    sku_id: str = Id
    rating: int = Field(ge=1, le=5, description="1..5 stars")
    text: str = Field(min_length=1, max_length=MAX_TEXT, description=f"1..{MAX_TEXT} characters (trimmed)")
    images: list[ImageKey] = Field(default_factory=list, max_length=MAX_IMAGES,
                                   description=f"up to {MAX_IMAGES} uploaded image keys, e.g. reviews/2026/ab12.jpg")

    @field_validator("images")
    @classmethod
    def _no_parent_segments(cls, images: list[str]) -> list[str]:
        if any(".." in key for key in images):
            raise ValueError("an image key may not contain '..'")
        return images


class ReviewBody(RequestModel):
    lines: list[ReviewLineIn] = Field(min_length=1, max_length=MAX_LINES,
                                      description="one review per order line (sku_id), each line at most once")

    @field_validator("lines")
    @classmethod
    def _one_review_per_line(cls, lines: list[ReviewLineIn]) -> list[ReviewLineIn]:
        if len({line.sku_id for line in lines}) != len(lines):
            raise ValueError("each sku_id may appear once")
        return lines


class ReplyOut(ResponseModel):
    text: str
    replied_at: str


class PublicReviewOut(ResponseModel):
    review_id: str
    nickname: str = Field(description="the buyer's nickname, masked (e.g. 张***丰)")
    specs: dict[str, str] = Field(description="the SKU bought, e.g. {\"重量\": \"5斤\"}")
    rating: int
    text: str
    images: list[str]
    created_at: str
    reply: ReplyOut | None = Field(description="the merchant's reply, if any")


class OwnReviewOut(PublicReviewOut):
    sku_id: str
    product_id: str
    status: ReviewStatusName = Field(description="visible at once; hidden if the merchant hid it")


class OwnReviewList(ResponseModel):
    items: list[OwnReviewOut]


class RatingSummaryOut(ResponseModel):
    review_count: int = Field(description="visible reviews")
    average: float | None = Field(description="mean rating to one decimal (half up); null without reviews")
    stars: dict[str, int] = Field(description='visible reviews per rating, "1".."5"')


class ProductReviewPage(ResponseModel):
    summary: RatingSummaryOut
    items: list[PublicReviewOut]
    next_cursor: str | None


class ReviewListQuery(QueryModel):
    limit: int = Field(default=10, ge=1, le=50)
    cursor: str | None = Field(default=None, max_length=2048)


class AdminReviewOut(OwnReviewOut):
    order_id: str
    user_id: str
    report_count: int
    reported: bool = Field(description="reports await the merchant (hide, or show to dismiss them)")
    report_reasons: list[str]
    updated_at: str


class AdminReviewList(ResponseModel):
    items: list[AdminReviewOut]
    next_cursor: str | None


class AdminReviewQuery(QueryModel):
    status: Literal["visible", "hidden", "reported"] | None = Field(
        default=None, description="reported: visible reviews with open reports; none: all")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=2048)


class ReplyBody(RequestModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT, description="replaces any earlier reply")


class ReportBody(RequestModel):
    reason: ReportReason


class ReportOut(ResponseModel):
    review_id: str
    reported: bool = Field(description="true: the merchant will look at it (reporting again changes nothing)")
