"""After-sales (refund / return requests): request bodies and the request document (API.md "After-sales")."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from chalicelib.domain.pricing import MAX_LINE_QUANTITY, MAX_LINES
from chalicelib.schemas.common import QueryModel, RequestModel, ResponseModel

AfterSaleStatus = Literal["requested", "approved", "rejected", "refunding", "refunded", "exchanging", "exchanged",
                          "disputed"]
AfterSaleKind = Literal["refund", "return", "exchange"]


class AfterSaleLineIn(RequestModel):
    sku_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    quantity: int = Field(ge=1, le=MAX_LINE_QUANTITY, description="units of this SKU to refund")


class AfterSaleBody(RequestModel):
    kind: AfterSaleKind = Field(description="refund: an unshipped (paid) order; return: shipped or completed goods, "
                                            "refunded once they are back; exchange: the same goods again for them")
    reason: str = Field(min_length=1, max_length=200)
    lines: list[AfterSaleLineIn] | None = Field(
        default=None, min_length=1, max_length=MAX_LINES,
        description="omit for every unit not yet claimed by another request (and the delivery fee if unshipped)")

    @field_validator("lines")
    @classmethod
    def _one_line_per_sku(cls, lines: list[AfterSaleLineIn] | None) -> list[AfterSaleLineIn] | None:
        if lines is not None and len({line.sku_id for line in lines}) != len(lines):
            raise ValueError("each sku_id may appear once; add up the quantities")
        return lines


class ReturnShipmentBody(RequestModel):
    carrier: str = Field(min_length=1, max_length=32, description="the carrier the goods were sent back with, e.g. 顺丰速运")
    tracking_no: str = Field(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9\-]+$")


class ReplacementBody(RequestModel):
    carrier: str = Field(min_length=1, max_length=32, description="the carrier the replacement leaves with")
    tracking_no: str = Field(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9\-]+$")


class ReturnShipmentOut(ResponseModel):
    carrier: str
    tracking_no: str
    submitted_at: str


class DisputeBody(RequestModel):
    reason: str = Field(min_length=1, max_length=200, description="why the rejection is wrong")


class RejectBody(RequestModel):
    reason: str = Field(min_length=1, max_length=200, description="shown to the user")


class AfterSaleLineOut(ResponseModel):
    sku_id: str
    quantity: int
    amount_fen: int


class AfterSaleOut(ResponseModel):
    request_id: str
    order_id: str
    kind: AfterSaleKind
    reason: str
    status: AfterSaleStatus
    amount_fen: int = Field(description="what the refund returns: its lines plus delivery_fee_fen")
    delivery_fee_fen: int = Field(description="the delivery fee, refunded only with a whole unshipped order")
    lines: list[AfterSaleLineOut]
    note: str | None = Field(description="why it was rejected, or why its refund failed")
    created_at: str
    updated_at: str
    return_address: str | None = Field(default=None, description="an approved return: where to send the goods")
    return_shipment: ReturnShipmentOut | None = Field(default=None, description="a return: the buyer's tracking number")
    received_at: str | None = Field(default=None, description="a return: when the merchant received the goods "
                                                                "(they were restocked and the refund sent then)")
    replacement_shipment: dict[str, str] | None = Field(default=None, description="an exchange: the replacement's "
                                                                                  "carrier, tracking_no, shipped_at")
    dispute_reason: str | None = Field(default=None, description="the buyer contested the rejection with this")


class AdminAfterSaleOut(AfterSaleOut):
    user_id: str
    out_refund_no: str | None
    refund_status: str | None = Field(description="the current refund's: processing, success, failed, abnormal, stuck")


class AdminAfterSaleList(ResponseModel):
    items: list[AdminAfterSaleOut]
    next_cursor: str | None


class AdminAfterSaleQuery(QueryModel):
    status: AfterSaleStatus | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=2048)
