"""Checkout preview and orders: request bodies and the order document (API.md "Amounts")."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from chalicelib.domain.pricing import MAX_LINE_QUANTITY, MAX_LINES
from chalicelib.schemas.common import QueryModel, RequestModel, ResponseModel
from chalicelib.schemas.shipping import ShippingUploadOut

OrderStatusName = Literal["pending_payment", "paid", "shipped", "completed", "cancelled", "refunded"]
Id = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")


class ItemIn(RequestModel):
    sku_id: str = Id
    quantity: int = Field(ge=1, le=MAX_LINE_QUANTITY, description=f"1..{MAX_LINE_QUANTITY} per line")


class CheckoutBody(RequestModel):
    items: list[ItemIn] | None = Field(default=None, min_length=1, max_length=MAX_LINES,
                                       description="omit to check out the selected cart lines")
    address_id: str | None = Field(default=None, min_length=1, max_length=64)
    delivery_method: Literal["express", "pickup", "same_city", "none"] | None = Field(
        default=None, description="default: express for physical goods, none for virtual-only orders; same_city: "
                                  "a rider from the nearest store (the address needs lat/lng; fee and ETA by distance)")
    store_id: str | None = Field(default=None, min_length=1, max_length=64)
    coupon_ids: list[str] | None = Field(default=None, max_length=10)
    points: int | None = Field(default=None, ge=0, le=100_000_000, description="points to use (100 points = 1 yuan); "
                               "more than points_usable is 409 insufficient_points")
    bargain_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$",
                                   description="buy one unit of the bargain's SKU at the price its helpers reached "
                                               "(the sponsor only, once, before it expires); no coupons or points "
                                               "on top")

    @field_validator("items")
    @classmethod
    def _one_line_per_sku(cls, items: list[ItemIn] | None) -> list[ItemIn] | None:
        if items is not None and len({item.sku_id for item in items}) != len(items):
            raise ValueError("each sku_id may appear once; add up the quantities")
        return items


class PlaceOrderBody(CheckoutBody):
    checkout_token: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$",
                                description="client-made UUID; replaying it returns the same order")


class LineOut(ResponseModel):
    sku_id: str
    product_id: str
    name: str
    specs: dict[str, str]
    price_fen: int
    quantity: int
    subtotal_fen: int
    discount_fen: int
    payable_fen: int
    virtual: bool = Field(description="virtual goods are not shipped")


class AdjustmentOut(ResponseModel):
    kind: str
    code: str
    amount_fen: int
    description: str


class CouponOutcomeOut(ResponseModel):
    coupon_id: str
    applied: bool
    amount_fen: int = Field(description="what the coupon takes off this order (0 when not applied)")
    reason: str | None = Field(description="why it does not apply: expired, not_yet_valid, out_of_scope, "
                                           "threshold_not_reached, nothing_to_discount, does_not_stack, "
                                           "not_the_best, not_selected (null when applied)")
    reason_text: str | None = Field(default=None, description="the reason for the buyer (Chinese)")
    conflicts_with: list[str] = Field(default_factory=list, description="does_not_stack: the coupons it conflicts with")


class QuoteOut(ResponseModel):
    lines: list[LineOut]
    goods_fen: int
    discount_fen: int
    delivery_fee_fen: int
    payable_fen: int
    adjustments: list[AdjustmentOut]
    delivery_method: Literal["express", "pickup", "same_city", "none"]
    delivery_eta_minutes: int | None = Field(default=None, description="same_city: minutes until delivery")
    coupons: list[CouponOutcomeOut] = Field(default_factory=list, description="each unused coupon of the "
                                            "wallet: applied (with its amount) or why not")
    points_usable: int = Field(default=0, description="the most points this order could use (100 points = 1 yuan): "
                               "the balance, capped at a share of the goods after discounts")
    points_used: int = Field(default=0, description="points this quote or order uses (its `points` adjustment)")


class ShipmentOut(ResponseModel):
    carrier: str
    tracking_no: str
    shipped_at: str


class OrderOut(QuoteOut):
    order_id: str
    out_trade_no: str
    status: OrderStatusName
    created_at: str
    pay_deadline: str
    paid_at: str | None
    cancelled_at: str | None
    address: dict[str, Any] | None
    store_id: str | None
    shipment: ShipmentOut | None
    flash_sale_id: str | None = Field(default=None, description="the flash sale this order was won in, if any")
    offer: dict[str, str] | None = Field(default=None, description="a group-buy or bargain order: {kind, id (the "
                                        "group_id or bargain_id), activity_id}")
    awaiting_group: bool = Field(default=False, description="a group order whose group has not succeeded yet "
                                                            "(it ships once it does)")


class OrderList(ResponseModel):
    items: list[OrderOut]
    next_cursor: str | None


class OrderListQuery(QueryModel):
    status: OrderStatusName | None = None
    limit: int = Field(default=20, ge=1, le=50)
    cursor: str | None = Field(default=None, max_length=2048)


class PaymentOut(ResponseModel):
    transaction_id: str
    amount_fen: int
    paid_at: str


class RefundOut(ResponseModel):
    out_refund_no: str
    refund_id: str | None
    amount_fen: int
    status: str = Field(description="processing; success; failed (WeChat closed it, no money moved); abnormal "
                                    "(WeChat could not pay it out: finish it on the merchant platform); stuck "
                                    "(asking WeChat kept failing: fix the cause, then retry it)")
    request_id: str | None = Field(default=None, description="the after-sales request it pays, if any")
    attempts: int = Field(default=0, description="times the retry job asked WeChat again")


class AdminOrderOut(OrderOut):
    user_id: str
    cancel_reason: str | None
    payments: list[PaymentOut]
    refunds: list[RefundOut]
    refunded_fen: int = Field(description="money returned on the order's own payment (the order is refunded "
                                          "when this reaches payable_fen)")
    shipping_upload: ShippingUploadOut | None = Field(
        description="the shipping-info upload to WeChat: pending, uploaded or failed (with WeChat's errcode)")
    shipments: list[dict[str, Any]] = Field(default_factory=list, description=(
        "packages shipped line by line: [{shipment_id, carrier, tracking_no, lines: [{sku_id, quantity}], "
        "shipped_at, by}]"))
    shipped_units: dict[str, int] = Field(default_factory=dict, description="units shipped so far per sku_id")
    remarks: list[dict[str, Any]] = Field(default_factory=list, description="the merchant's remarks: [{at, by, text}]")


class AdminOrderList(ResponseModel):
    items: list[AdminOrderOut]
    next_cursor: str | None


class AdminOrderQuery(QueryModel):
    status: OrderStatusName | None = None
    created_from: datetime | None = Field(default=None, description="ISO 8601 with offset")
    created_to: datetime | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=2048)

    @field_validator("created_from", "created_to")
    @classmethod
    def _needs_offset(cls, moment: datetime | None) -> datetime | None:
        if moment is not None and moment.tzinfo is None:
            raise ValueError("give the time with its offset, e.g. 2026-12-01T00:00:00+08:00")
        return moment

    @model_validator(mode="after")
    def _range_in_order(self) -> "AdminOrderQuery":
        if self.created_from is not None and self.created_to is not None and self.created_from > self.created_to:
            raise ValueError("created_from must not be after created_to")
        return self


class ShipBody(RequestModel):
    carrier: str = Field(min_length=1, max_length=32, description=(
        "e.g. 顺丰速运; for express orders one of 顺丰速运, 中通快递, 圆通速递, 韵达速递, 申通快递, 京东物流, "
        "邮政EMS or WeChat's delivery_id (e.g. SF), else 400 unknown_carrier"))
    tracking_no: str = Field(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9\-]+$")
