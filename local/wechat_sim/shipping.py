"""发货信息录入 (uploadShippingInfo) on the simulator, and a dev view of what was accepted.

  POST /wxa/sec/order/upload_shipping_info?access_token=   endpoint name "upload_shipping_info"
  GET  /__sim/shipping[?out_trade_no=]                     accepted uploads (dev only)

Checked in this order, answering as WeChat does (HTTP 200 + errcode):
  - the access token (41001 missing, 40001 invalid or expired);
  - the body's shape: order_key, logistics_type 1-4, delivery_mode 1 (unified) or 2 (split),
    shipping_list of 1-15 items with item_desc (1-120 characters), express items with
    tracking_no and a known express_company (SF also needs a masked contact), upload_time in
    RFC 3339 with an offset, payer.openid; anything wrong is 47001 "data format error", except
    WeChat's own codes 10060006 (split delivery that is not express) and 268485228 (unified
    delivery with other than one item);
  - the payment, on this simulator's Pay side: by mchid + out_trade_no (order_number_type 1) or
    transaction_id (2), of the token's appid and paid; else 10060001 "支付单不存在" (WeChat's
    answer for an unpaid order, and for about a minute after payment: inject that as a fault);
  - the payer: 10060031 unless payer.openid paid it;
  - its state: 10060004 once fully refunded;
  - re-shipping: a payment takes one upload and one re-upload with a later upload_time; a
    third is 10060003 "支付单已使用重新发货机会".
Where WeChat's documentation names no code (a bad upload_time, an unknown carrier) the
simulator answers the generic 47001.
"""

from __future__ import annotations

from typing import Any

from .open_api import _token_appid
from .pay_ops import find_transaction
from .pay_store import book, parse_rfc3339, refunded_amount
from .server import Request, Response, Router, json_response, wx_error

# A few of WeChat's delivery_ids (get_delivery_list); enough for a store's usual carriers.
DELIVERY_IDS = frozenset({"SF", "ZTO", "YTO", "YD", "STO", "JD", "EMS", "DB", "JTSD", "YZPY", "HTKY", "BEST"})
CONTACT_REQUIRED = frozenset({"SF"})
ITEM_DESC_MAX = 120
MAX_ITEMS = 15


def register(router: Router) -> None:
    router.add("POST", "/wxa/sec/order/upload_shipping_info", upload_shipping_info, name="upload_shipping_info")
    router.add("GET", "/__sim/shipping", uploads)


def _uploads(state: Any) -> list[dict[str, Any]]:
    return state.namespace("shipping", list)


def _int(value: Any, allowed: tuple[int, ...]) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value in allowed


def _text(value: Any, high: int) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= high


def _format_error(reason: str) -> Response:
    return wx_error(47001, f"data format error, hint: {reason}")


def _check_item(item: Any, logistics_type: int) -> str | None:
    if not isinstance(item, dict):
        return "shipping_list items must be objects"
    if not _text(item.get("item_desc"), ITEM_DESC_MAX):
        return f"item_desc must be 1..{ITEM_DESC_MAX} characters"
    if logistics_type != 1:
        return None
    if not _text(item.get("tracking_no"), 128):
        return "tracking_no is required for express delivery"
    company = item.get("express_company")
    if company not in DELIVERY_IDS:
        return f"express_company {company!r} is not a delivery_id"
    if company in CONTACT_REQUIRED:
        contact = item.get("contact") if isinstance(item.get("contact"), dict) else {}
        phones = [contact.get(k) for k in ("receiver_contact", "consignor_contact") if isinstance(contact.get(k), str)]
        if not any(len(p) >= 4 and p[-4:].isdigit() for p in phones):
            return "contact (masked, last 4 digits in clear) is required for SF"
    return None


def _check_shape(body: dict[str, Any]) -> Response | None:
    key = body.get("order_key")
    if not isinstance(key, dict) or not _int(key.get("order_number_type"), (1, 2)):
        return _format_error("order_key.order_number_type must be 1 or 2")
    if key["order_number_type"] == 1 and not (_text(key.get("mchid"), 32) and _text(key.get("out_trade_no"), 32)):
        return _format_error("order_number_type 1 needs mchid and out_trade_no")
    if key["order_number_type"] == 2 and not _text(key.get("transaction_id"), 32):
        return _format_error("order_number_type 2 needs transaction_id")
    logistics_type, mode, items = body.get("logistics_type"), body.get("delivery_mode"), body.get("shipping_list")
    if not _int(logistics_type, (1, 2, 3, 4)) or not _int(mode, (1, 2)):
        return _format_error("logistics_type must be 1..4 and delivery_mode 1 or 2")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        return _format_error(f"shipping_list must be an array of 1..{MAX_ITEMS}")
    if mode == 2 and logistics_type != 1:
        return wx_error(10060006, "非快递发货时不允许分拆发货")
    if mode == 2 and not isinstance(body.get("is_all_delivered"), bool):
        return _format_error("is_all_delivered is required for split delivery")
    if mode == 1 and len(items) != 1:
        return wx_error(268485228, "统一发货模式下,物流信息列表长度必须为1")
    for item in items:
        problem = _check_item(item, logistics_type)
        if problem:
            return _format_error(problem)
    try:
        parse_rfc3339(body.get("upload_time") if isinstance(body.get("upload_time"), str) else "")
    except ValueError:
        return _format_error("upload_time must be RFC 3339 with an offset")
    payer = body.get("payer")
    if not isinstance(payer, dict) or not _text(payer.get("openid"), 128):
        return _format_error("payer.openid is required")
    return None


def upload_shipping_info(req: Request) -> Response:
    appid = _token_appid(req)
    if isinstance(appid, Response):
        return appid
    body = req.json_object()
    problem = _check_shape(body)
    if problem:
        return problem
    key, state = body["order_key"], req.state
    with state.lock:
        if key["order_number_type"] == 1:
            txn = find_transaction(state, key["out_trade_no"], None)
            if txn is not None and txn.mchid != key["mchid"]:
                txn = None
        else:
            txn = find_transaction(state, None, key["transaction_id"])
        if txn is None or not txn.paid or txn.appid != appid:
            return wx_error(10060001, "支付单不存在")
        if body["payer"]["openid"] != txn.openid:
            return wx_error(10060031, "该笔支付单不属于 openid 所指定的用户")
        if refunded_amount(book(state), txn) >= txn.total:
            return wx_error(10060004, "支付单处于不可发货的状态")
        earlier = [u for u in _uploads(state) if u["transaction_id"] == txn.transaction_id]
        if len(earlier) >= 2:
            return wx_error(10060003, "支付单已使用重新发货机会")
        upload_time = parse_rfc3339(body["upload_time"])
        if earlier and upload_time <= parse_rfc3339(earlier[-1]["upload_time"]):
            return _format_error("upload_time must be later than the previous upload's")
        _uploads(state).append({
            "appid": appid, "mchid": txn.mchid, "out_trade_no": txn.out_trade_no,
            "transaction_id": txn.transaction_id, "order_number_type": key["order_number_type"],
            "logistics_type": body["logistics_type"], "delivery_mode": body["delivery_mode"],
            "shipping_list": body["shipping_list"], "upload_time": body["upload_time"],
            "payer_openid": body["payer"]["openid"], "reshipped": bool(earlier), "received_at": state.now(),
        })
    return json_response({"errcode": 0, "errmsg": "ok"})


def uploads(req: Request) -> Response:
    out_trade_no = req.query.get("out_trade_no")
    with req.state.lock:
        items = [dict(u) for u in _uploads(req.state) if out_trade_no is None or u["out_trade_no"] == out_trade_no]
    return json_response({"items": items})
