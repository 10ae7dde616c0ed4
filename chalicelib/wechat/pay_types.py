"""What WeChat Pay tells us, the same for Pay v2 (XML) and v3 (JSON), so services never branch on the version.

Amounts are integer fen. Times are timezone-aware datetimes (WeChat sends China Standard Time).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

TradeState = Literal["SUCCESS", "NOTPAY", "CLOSED", "REFUND", "USERPAYING", "PAYERROR", "REVOKED"]
RefundStatus = Literal["SUCCESS", "PROCESSING", "ABNORMAL", "CLOSED"]
NotificationKind = Literal["payment", "refund"]


@dataclass(frozen=True)
class Transaction:
    out_trade_no: str
    transaction_id: str | None  # WeChat assigns it only once the user has tried to pay
    trade_state: TradeState
    amount_total_fen: int | None  # None only when WeChat left it out (an unpaid order)
    payer_openid: str | None
    appid: str
    mchid: str
    success_time: datetime | None


@dataclass(frozen=True)
class Refund:
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str | None
    refund_fen: int | None  # None when WeChat left the amount out (some v3 refund notifies do)
    total_fen: int | None
    status: RefundStatus
    success_time: datetime | None


@dataclass(frozen=True)
class PaymentNotification:
    """One verified notify. `notify_id` is WeChat's id for v3; for v2 (which has none) the
    transaction_id of a payment or the refund_id of a refund. Idempotency keys are the
    transaction's/refund's own ids, not this one: WeChat may send the same event twice."""
    kind: NotificationKind
    transaction: Transaction | None
    refund: Refund | None
    notify_id: str


class PaySignatureError(Exception):
    """Forged, tampered, stale, unreadable or signed by a key we don't know: refuse the notify
    (WeChat retries) and never act on the response."""


class PayNotifyUnsupported(Exception):
    """A correctly signed notify that is not an event we handle (or lacks the fields we need)."""


class PayApiError(Exception):
    """WeChat Pay answered an error: v3 `{"code", "message"}`, v2 return_code/err_code."""

    def __init__(self, code: str, message: str, http_status: int | None = None):
        super().__init__(f"WeChat Pay {code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


class PayUnavailable(Exception):
    """WeChat Pay could not be reached, timed out, answered 5xx or something we cannot read."""
