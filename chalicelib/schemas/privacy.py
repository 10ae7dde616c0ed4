"""PIPL: the consent ledger's bodies, the data export, and the account deletion's receipt.

The export is the user's own records only: ids of other people, WeChat's raw payloads and
signatures (prepay ids, session keys, openid/unionid), the merchant's internal bookkeeping
(request fingerprints, sweep timers, upload attempts) are left out on purpose.
"""
from __future__ import annotations

from typing import Any

from pydantic import Field

from chalicelib.schemas.addresses import AddressOut as AddressExport  # an address exported is as the API shows it
from chalicelib.schemas.common import RequestModel, ResponseModel

VERSION_PATTERN = r"^[A-Za-z0-9_.\-]+$"


class ConsentBody(RequestModel):
    version: str = Field(min_length=1, max_length=32, pattern=VERSION_PATTERN,
                         description="the privacy policy version the user answered about")
    granted: bool = Field(description="true: agreed (wx.requirePrivacyAuthorize resolved); false: withdrew")
    client: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-:/ ]+$",
                               description="optional: the mini-program's version or page the answer came from")


class ConsentOut(ResponseModel):
    version: str
    granted: bool
    at: str
    source: str = Field(description="where the answer was given: consents, profile, login")
    client: str | None = None


class ConsentPage(ResponseModel):
    items: list[ConsentOut]
    next_cursor: str | None
    current_version: str | None = Field(description="the version currently agreed to, null when none")


class ProfileExport(ResponseModel):
    user_id: str
    nickname: str | None
    avatar_url: str | None
    member_level: str
    points: int
    phone: str | None = Field(description="the user's own number, in full: this is their copy of their data")
    birthday: str | None
    privacy_consent_version: str | None
    referred_by: str | None = Field(description="the inviter's referral code (not their id), if bound")
    created_at: str


class PaymentExport(ResponseModel):
    transaction_id: str
    amount_fen: int
    paid_at: str


class RefundExport(ResponseModel):
    out_refund_no: str
    amount_fen: int
    status: str
    reason: str
    created_at: str
    completed_at: str | None


class OrderExport(ResponseModel):
    order_id: str
    status: str
    created_at: str
    paid_at: str | None
    shipped_at: str | None
    completed_at: str | None
    cancelled_at: str | None
    delivery_method: str
    address: dict[str, Any] | None
    store_id: str | None
    shipment: dict[str, Any] | None
    lines: list[dict[str, Any]]
    adjustments: list[dict[str, Any]]
    goods_fen: int
    discount_fen: int
    delivery_fee_fen: int
    payable_fen: int
    refunded_fen: int
    payments: list[PaymentExport]
    refunds: list[RefundExport]


class CouponExport(ResponseModel):
    coupon_id: str
    template_id: str
    name: str
    status: str
    valid_from: str
    valid_to: str
    claimed_at: str | None
    order_id: str | None
    used_at: str | None


class ReviewExport(ResponseModel):
    review_id: str
    order_id: str
    product_id: str
    sku_id: str
    rating: int
    text: str
    images: list[str]
    status: str
    created_at: str
    reply: dict[str, Any] | None


class FavoriteExport(ResponseModel):
    product_id: str
    added_at: str


class ViewExport(ResponseModel):
    product_id: str
    viewed_at: str


class AfterSaleExport(ResponseModel):
    request_id: str
    order_id: str
    kind: str
    reason: str
    status: str
    amount_fen: int
    lines: list[dict[str, Any]]
    created_at: str
    updated_at: str


class DataExport(ResponseModel):
    """Every section is listed even when empty, so a reader can tell "none" from "not exported"."""
    exported_at: str
    profile: ProfileExport
    consents: list[ConsentOut]
    addresses: list[AddressExport]
    orders: list[OrderExport]
    coupons: list[CouponExport]
    reviews: list[ReviewExport]
    favorites: list[FavoriteExport]
    history: list[ViewExport]
    after_sales: list[AfterSaleExport]
    # The points ledger (storage/points.py) adds its section here: a builder appended to
    # services/privacy.py EXPORT_SECTIONS under the name "points" fills it.
    points: Any = Field(default=None, description="the points ledger: balance, lots and history")
    commissions: Any = Field(default=None, description="a distributor's commission figures (fen) and ledger")
    truncated: list[str] = Field(default_factory=list,
                                 description="sections cut at their bound (contact the store for the rest)")


class DeletionReceipt(ResponseModel):
    status: str = Field(description="deleted")
    requested_at: str
    completed_at: str
    deleted: dict[str, int] = Field(description="items deleted, by kind")
    anonymised: dict[str, int] = Field(description="items kept for accounting without the person, by kind")
