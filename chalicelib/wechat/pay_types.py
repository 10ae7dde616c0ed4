"""What WeChat Pay tells us, the same for Pay v2 (XML) and v3 (JSON), so services never branch on the version.

Amounts are integer fen. Times are timezone-aware datetimes (WeChat sends China Standard Time).
The mapping from each version's wire fields sits here too, side by side, so the differences
between them (names, states, time formats) are visible in one place.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Mapping

from chalicelib.clock import CHINA_TZ

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


class PayProtocolNotConfigured(Exception):
    """A notify of a Pay version (v2 XML, v3 JSON) this store is not configured for. Refused before
    anything is verified: checking a signature with an empty or unused key would let anyone forge
    one (`key=` is a valid MD5 input)."""


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


# ---------------------------------------------------------------- wire fields -> these types
# Each raises KeyError/ValueError/TypeError on missing or malformed fields; callers turn that into
# PayUnavailable (an answer) or PayNotifyUnsupported (a notify).

def _fen(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _rfc3339(text: Any) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(str(text))  # e.g. 2018-06-08T10:34:56+08:00
    return moment if moment.tzinfo else moment.replace(tzinfo=CHINA_TZ)


def _china_time(text: str | None, pattern: str) -> datetime | None:
    return datetime.strptime(text, pattern).replace(tzinfo=CHINA_TZ) if text else None


def transaction_from_v3(data: Mapping[str, Any]) -> Transaction:
    """A v3 query answer or a decrypted TRANSACTION.SUCCESS resource."""
    amount, payer = data.get("amount") or {}, data.get("payer") or {}
    return Transaction(
        out_trade_no=str(data["out_trade_no"]), transaction_id=data.get("transaction_id") or None,
        trade_state=str(data["trade_state"]), amount_total_fen=_fen(amount.get("total")),  # type: ignore[arg-type]
        payer_openid=payer.get("openid") or None, appid=str(data.get("appid", "")),
        mchid=str(data.get("mchid", "")), success_time=_rfc3339(data.get("success_time")))


def refund_from_v3(data: Mapping[str, Any]) -> Refund:
    """A v3 refund answer (`status`) or a decrypted REFUND.* resource (`refund_status`)."""
    amount = data.get("amount") or {}
    return Refund(
        out_refund_no=str(data["out_refund_no"]), refund_id=str(data["refund_id"]),
        out_trade_no=str(data.get("out_trade_no", "")), transaction_id=data.get("transaction_id") or None,
        refund_fen=_fen(amount.get("refund")), total_fen=_fen(amount.get("total")),
        status=str(data.get("status") or data["refund_status"]),  # type: ignore[arg-type]
        success_time=_rfc3339(data.get("success_time")))


# v2 refund states -> the shared ones (CHANGE: the money could not reach the user's account).
V2_REFUND_STATUS = {"SUCCESS": "SUCCESS", "PROCESSING": "PROCESSING", "CHANGE": "ABNORMAL", "REFUNDCLOSE": "CLOSED"}


def transaction_from_v2(fields: Mapping[str, str]) -> Transaction:
    """A v2 orderquery answer (`trade_state`) or pay notify (SUCCESS unless result_code says otherwise);
    `time_end` is yyyyMMddHHmmss in China time."""
    state = fields.get("trade_state") or ("SUCCESS" if fields.get("result_code") == "SUCCESS" else "PAYERROR")
    return Transaction(
        out_trade_no=fields["out_trade_no"], transaction_id=fields.get("transaction_id") or None,
        trade_state=state, amount_total_fen=_fen(fields.get("total_fee")),  # type: ignore[arg-type]
        payer_openid=fields.get("openid") or None, appid=fields.get("appid", ""), mchid=fields.get("mch_id", ""),
        success_time=_china_time(fields.get("time_end"), "%Y%m%d%H%M%S"))


def refund_from_v2(fields: Mapping[str, str]) -> Refund:
    """A v2 refund answer (accepted, so PROCESSING) or a decrypted refund notify (`refund_status`)."""
    return Refund(
        out_refund_no=fields["out_refund_no"], refund_id=fields["refund_id"],
        out_trade_no=fields.get("out_trade_no", ""), transaction_id=fields.get("transaction_id") or None,
        refund_fen=int(fields["refund_fee"]), total_fen=int(fields["total_fee"]),
        status=V2_REFUND_STATUS[fields.get("refund_status") or "PROCESSING"],  # type: ignore[arg-type]
        success_time=_china_time(fields.get("success_time"), "%Y-%m-%d %H:%M:%S"))
