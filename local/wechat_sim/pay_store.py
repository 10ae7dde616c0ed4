"""WeChat Pay's side of the books: transactions and refunds, shared by v2 and v3.

One transaction per out_trade_no (as at WeChat, for one merchant), whichever
API created it; each remembers its API so notifies go out in its format.
All mutation happens under ``state.lock``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

BEIJING = dt.timezone(dt.timedelta(hours=8))
TRADE_STATE_DESC = {"NOTPAY": "订单未支付", "SUCCESS": "支付成功", "CLOSED": "订单已关闭",
                    "REFUND": "订单发生过退款"}
_serial = itertools.count(1)


@dataclass
class Refund:
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    refund: int
    total: int
    api: str
    notify_url: str | None
    reason: str
    fingerprint: str
    created_at: float
    status: str = "PROCESSING"          # PROCESSING -> SUCCESS | ABNORMAL | CLOSED
    success_at: float | None = None
    client_cert_presented: bool | None = None  # v2 only; never verifiable over plain HTTP
    notify_ids: list[str] = field(default_factory=list)


@dataclass
class Transaction:
    api: str                      # "v3" or "v2"
    appid: str
    mchid: str
    out_trade_no: str
    description: str
    total: int
    openid: str
    notify_url: str
    attach: str
    time_expire: float | None
    fingerprint: str
    prepay_id: str
    created_at: float
    prepay_at: float = 0.0        # prepay_ids live two hours
    sign_type: str = "MD5"        # v2: the sign type of the order, used for its notifies
    currency: str = "CNY"
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_at: float | None = None
    refunds: list[str] = field(default_factory=list)
    notify_ids: list[str] = field(default_factory=list)
    profit_sharing: bool = False  # v3 settle_info.profit_sharing: funds frozen for 分账 (local/wechat_sim/profit_sharing.py)

    @property
    def paid(self) -> bool:
        return self.trade_state in ("SUCCESS", "REFUND")


@dataclass
class PayBook:
    transactions: dict[str, Transaction] = field(default_factory=dict)   # out_trade_no ->
    by_transaction_id: dict[str, str] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)             # out_refund_no ->
    by_prepay_id: dict[str, str] = field(default_factory=dict)


def book(state: Any) -> PayBook:
    return state.namespace("pay", PayBook)


# -- ids and times --------------------------------------------------------------------

def _digits(n: int) -> str:
    return "".join(str(secrets.randbelow(10)) for _ in range(n))


def beijing(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, BEIJING)


def new_prepay_id(now: float) -> str:
    return "wx" + beijing(now).strftime("%Y%m%d%H%M%S") + secrets.token_hex(10)


def new_transaction_id(now: float) -> str:
    # 28 digits: "42000" + serial-ish digits + date + random, like WeChat's.
    return f"42000{next(_serial) % 100000:05d}" + beijing(now).strftime("%Y%m%d") + _digits(10)


def new_refund_id(now: float) -> str:
    return "503000" + f"{next(_serial) % 100000:05d}" + beijing(now).strftime("%Y%m%d") + _digits(10)


def rfc3339(epoch: float) -> str:
    return beijing(epoch).isoformat(timespec="seconds")


def v2_time(epoch: float) -> str:
    return beijing(epoch).strftime("%Y%m%d%H%M%S")


def v2_datetime(epoch: float) -> str:
    return beijing(epoch).strftime("%Y-%m-%d %H:%M:%S")


def parse_rfc3339(text: str) -> float:
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None or "T" not in text:
        raise ValueError("needs a date, a time and an offset")
    return value.timestamp()


def parse_v2_time(text: str) -> float:
    if len(text) != 14 or not text.isdigit():
        raise ValueError("yyyyMMddHHmmss")
    return dt.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING).timestamp()


# -- state changes (call with state.lock held) ---------------------------------------------------

def refunded_amount(pay: PayBook, txn: Transaction) -> int:
    """Money already promised back: every refund that is not CLOSED."""
    return sum(pay.refunds[no].refund for no in txn.refunds if pay.refunds[no].status != "CLOSED")


def mark_paid(pay: PayBook, txn: Transaction, now: float, openid: str | None = None) -> bool:
    """NOTPAY/CLOSED -> SUCCESS.  Returns False if it was already paid."""
    if txn.paid:
        return False
    txn.trade_state = "SUCCESS"
    txn.transaction_id = new_transaction_id(now)
    txn.success_at = now
    if openid:
        txn.openid = openid
    pay.by_transaction_id[txn.transaction_id] = txn.out_trade_no
    return True


def finish_refund(pay: PayBook, refund: Refund, status: str, now: float) -> None:
    refund.status = status
    if status == "SUCCESS":
        refund.success_at = now


def transaction_view(pay: PayBook, txn: Transaction) -> dict[str, Any]:
    """Dev view (GET /__sim/pay/transactions/...): everything the simulator knows."""
    return {
        "api": txn.api, "appid": txn.appid, "mchid": txn.mchid, "out_trade_no": txn.out_trade_no,
        "description": txn.description, "total": txn.total, "currency": txn.currency,
        "openid": txn.openid, "notify_url": txn.notify_url, "attach": txn.attach,
        "time_expire": rfc3339(txn.time_expire) if txn.time_expire else None,
        "prepay_id": txn.prepay_id, "trade_state": txn.trade_state,
        "transaction_id": txn.transaction_id, "sign_type": txn.sign_type if txn.api == "v2" else None,
        "success_time": rfc3339(txn.success_at) if txn.success_at else None,
        "created_time": rfc3339(txn.created_at), "refunded": refunded_amount(pay, txn),
        "refunds": [refund_view(pay.refunds[no]) for no in txn.refunds],
        "notify_ids": list(txn.notify_ids),
    }


def refund_view(refund: Refund) -> dict[str, Any]:
    return {"api": refund.api, "out_refund_no": refund.out_refund_no, "refund_id": refund.refund_id,
            "out_trade_no": refund.out_trade_no, "transaction_id": refund.transaction_id,
            "refund": refund.refund, "total": refund.total, "status": refund.status,
            "reason": refund.reason, "notify_url": refund.notify_url,
            "create_time": rfc3339(refund.created_at),
            "success_time": rfc3339(refund.success_at) if refund.success_at else None,
            "client_cert_presented": refund.client_cert_presented}


# -- APIv3 wire shapes (query answers and notify resources) -----------------------------------

def v3_transaction_json(txn: Transaction) -> dict[str, Any]:
    out: dict[str, Any] = {
        "appid": txn.appid, "mchid": txn.mchid, "out_trade_no": txn.out_trade_no,
        "trade_type": "JSAPI", "trade_state": txn.trade_state,
        "trade_state_desc": TRADE_STATE_DESC[txn.trade_state], "attach": txn.attach,
        "payer": {}, "amount": {"total": txn.total, "currency": txn.currency, "payer_currency": "CNY"},
        "promotion_detail": [],
    }
    if txn.transaction_id:
        out.update(transaction_id=txn.transaction_id, bank_type="OTHERS",
                   success_time=rfc3339(txn.success_at or txn.created_at), payer={"openid": txn.openid})
        out["amount"]["payer_total"] = txn.total
    return out


def v3_refund_json(refund: Refund) -> dict[str, Any]:
    out: dict[str, Any] = {
        "refund_id": refund.refund_id, "out_refund_no": refund.out_refund_no,
        "transaction_id": refund.transaction_id, "out_trade_no": refund.out_trade_no,
        "channel": "ORIGINAL", "user_received_account": "支付用户零钱",
        "create_time": rfc3339(refund.created_at), "status": refund.status,
        "funds_account": "AVAILABLE",
        "amount": {"total": refund.total, "refund": refund.refund, "from": [],
                   "payer_total": refund.total, "payer_refund": refund.refund,
                   "settlement_refund": refund.refund, "settlement_total": refund.total,
                   "discount_refund": 0, "currency": "CNY", "refund_fee": 0},
        "promotion_detail": [],
    }
    if refund.success_at:
        out["success_time"] = rfc3339(refund.success_at)
    return out


def v3_refund_notify_json(txn: Transaction, refund: Refund) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mchid": txn.mchid, "out_trade_no": txn.out_trade_no, "transaction_id": refund.transaction_id,
        "out_refund_no": refund.out_refund_no, "refund_id": refund.refund_id,
        "refund_status": refund.status, "user_received_account": "支付用户零钱",
        "amount": {"total": refund.total, "refund": refund.refund,
                   "payer_total": refund.total, "payer_refund": refund.refund},
    }
    if refund.success_at:
        out["success_time"] = rfc3339(refund.success_at)
    return out
