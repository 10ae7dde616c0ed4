"""WeChat Pay v3 分账 (profit sharing), as documented:

  POST /v3/profitsharing/receivers/add        添加分账接收方
  POST /v3/profitsharing/orders               请求分账
  GET  /v3/profitsharing/orders/{out_order_no}?transaction_id=   查询分账结果
  POST /v3/profitsharing/orders/unfreeze      解冻剩余资金
  POST /v3/profitsharing/return-orders        请求分账回退

Signed both ways like the rest of v3. Rules kept: only a transaction paid with
settle_info.profit_sharing=true can be split; every receiver must have been added; the shares of
one transaction never exceed 30% of what is left after refunds, nor anything once it is unfrozen;
an out_order_no asked again answers the same order (another content: 400 INVALID_REQUEST);
a return names a MERCHANT_ID receiver of the order and at most what it received less what it
returned, idempotent by out_return_no. A MERCHANT_ID receiver is added with its `name`, RSA-OAEP
encrypted with the platform key named by Wechatpay-Serial (decrypted here; GET lists it).
Everything finishes at once (SUCCESS / FINISHED).
"""
from __future__ import annotations

import base64
import binascii
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from .pay_keys import pay_config
from .pay_ops import find_transaction
from .pay_store import book as pay_book
from .pay_store import refunded_amount, rfc3339
from .pay_v3 import _json_body, error, param_error, signed, verify_request
from .server import Request, Response, Router, json_response

MAX_RATIO_PERMILLE = 300
_ids = itertools.count(1)


@dataclass
class SharingBook:
    receivers: set[tuple[str, str]] = field(default_factory=set)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)      # out_order_no ->
    returns: dict[str, dict[str, Any]] = field(default_factory=dict)     # out_return_no ->
    unfrozen: set[str] = field(default_factory=set)                       # transaction ids
    names: dict[str, str] = field(default_factory=dict)                   # account -> decrypted name


def _book(state: Any) -> SharingBook:
    return state.namespace("profit_sharing", SharingBook)


def register(router: Router) -> None:
    router.add("POST", "/v3/profitsharing/receivers/add", add_receiver, name="pay_v3_sharing_receiver")
    router.add("POST", "/v3/profitsharing/orders", create_order, name="pay_v3_sharing_order")
    router.add("GET", "/v3/profitsharing/orders/{out_order_no}", query_order, name="pay_v3_sharing_query")
    router.add("POST", "/v3/profitsharing/orders/unfreeze", unfreeze, name="pay_v3_sharing_unfreeze")
    router.add("POST", "/v3/profitsharing/return-orders", return_order, name="pay_v3_sharing_return")
    router.add("GET", "/__sim/pay/profit-sharing", view)


def _body(req: Request) -> dict[str, Any] | Response:
    return verify_request(req) or _json_body(req)


def add_receiver(req: Request) -> Response:
    body = _body(req)
    if isinstance(body, Response):
        return body
    if body.get("type") not in ("MERCHANT_ID", "PERSONAL_OPENID") or not isinstance(body.get("account"), str):
        return param_error(req, "/type", "MERCHANT_ID or PERSONAL_OPENID with an account", body.get("type"))
    name = None
    if body["type"] == "MERCHANT_ID" or body.get("name") is not None:
        name = _decrypt_name(req, body.get("name"))
        if isinstance(name, Response):
            return name
    with req.state.lock:
        _book(req.state).receivers.add((body["type"], body["account"]))
        if name is not None:
            _book(req.state).names[body["account"]] = name
    return signed(req, 200, {"type": body["type"], "account": body["account"],
                             "relation_type": body.get("relation_type", "OTHERS")})


def _decrypt_name(req: Request, cipher: Any) -> str | Response:
    """A receiver's `name`: required for MERCHANT_ID (the merchant's full name), RSA-OAEP encrypted
    with the platform key the request's Wechatpay-Serial names (certificate serial or PUB_KEY_ID)."""
    if not isinstance(cipher, str) or not cipher:
        return param_error(req, "/name", "a MERCHANT_ID receiver needs name (the merchant's full name), encrypted")
    platform = pay_config(req.state).platform
    serial = (req.headers.get("Wechatpay-Serial") or "").strip().upper().lstrip("0")
    keys = {platform.cert_serial.upper().lstrip("0"): platform.cert_key,
            platform.public_key_id.upper(): platform.pubkey_key}
    key = keys.get(serial)
    if key is None:
        return param_error(req, "Wechatpay-Serial", "names no platform certificate or public key", serial)
    try:
        plain = key.decrypt(base64.b64decode(cipher, validate=True),
                            padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(),
                                         label=None))
        return plain.decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return param_error(req, "/name", "does not decrypt with the key Wechatpay-Serial names")


def _order_json(order: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in order.items() if k != "fingerprint"}


def _shared(sharing: SharingBook, transaction_id: str) -> int:
    return sum(r["amount"] for o in sharing.orders.values() if o["transaction_id"] == transaction_id
               for r in o["receivers"])


def create_order(req: Request) -> Response:
    body = _body(req)
    if isinstance(body, Response):
        return body
    receivers = body.get("receivers")
    if not isinstance(body.get("out_order_no"), str) or not isinstance(receivers, list) or not receivers:
        return param_error(req, "/receivers", "out_order_no and 1..50 receivers are required")
    if any(not isinstance(r, dict) or not isinstance(r.get("amount"), int) or r["amount"] <= 0 for r in receivers):
        return param_error(req, "/receivers", "each receiver needs a positive amount (fen)")
    txn = find_transaction(req.state, None, body.get("transaction_id"))
    if txn is None or not txn.paid:
        return error(req, 404, "RESOURCE_NOT_EXISTS", "订单不存在或未支付")
    sharing, now = _book(req.state), req.state.now()
    fingerprint = json.dumps(body, sort_keys=True, ensure_ascii=False)
    with req.state.lock:
        existing = sharing.orders.get(body["out_order_no"])
        if existing is not None:
            if existing["fingerprint"] != fingerprint:
                return error(req, 400, "INVALID_REQUEST", "商户分账单号已存在，且内容不一致")
            return signed(req, 200, _order_json(existing))
        if not txn.profit_sharing:
            return error(req, 403, "NO_AUTH", "该笔订单不是分账订单 (paid without settle_info.profit_sharing)")
        if txn.transaction_id in sharing.unfrozen:
            return error(req, 400, "INVALID_REQUEST", "订单已解冻，无法分账")
        missing = [r["account"] for r in receivers if (r.get("type"), r.get("account")) not in sharing.receivers]
        if missing:
            return error(req, 400, "RECEIVER_INVALID", "分账接收方未添加")
        left = txn.total - refunded_amount(pay_book(req.state), txn)
        asked = _shared(sharing, txn.transaction_id) + sum(r["amount"] for r in receivers)
        if asked > left * MAX_RATIO_PERMILLE // 1000:
            return error(req, 400, "INVALID_REQUEST", "分账金额超出最大分账比例")
        order = {"fingerprint": fingerprint, "transaction_id": txn.transaction_id,
                 "out_order_no": body["out_order_no"], "order_id": f"3008450740{next(_ids):010d}",
                 "state": "FINISHED",
                 "receivers": [{"amount": r["amount"], "description": r.get("description", ""), "type": r["type"],
                                "account": r["account"], "result": "SUCCESS", "detail_id": f"3600{next(_ids):012d}",
                                "create_time": rfc3339(now), "finish_time": rfc3339(now)} for r in receivers]}
        sharing.orders[order["out_order_no"]] = order
        if body.get("unfreeze_unsplit") is True:
            sharing.unfrozen.add(txn.transaction_id)
    return signed(req, 200, _order_json(order))


def query_order(req: Request) -> Response:
    problem = verify_request(req)
    if problem:
        return problem
    with req.state.lock:
        order = _book(req.state).orders.get(req.params["out_order_no"])
        if order is None or order["transaction_id"] != req.query.get("transaction_id"):
            return error(req, 404, "RESOURCE_NOT_EXISTS", "记录不存在")
        answer = _order_json(order)
    return signed(req, 200, answer)


def unfreeze(req: Request) -> Response:
    body = _body(req)
    if isinstance(body, Response):
        return body
    txn = find_transaction(req.state, None, body.get("transaction_id"))
    if txn is None or not txn.paid or not isinstance(body.get("out_order_no"), str):
        return error(req, 404, "RESOURCE_NOT_EXISTS", "订单不存在")
    sharing, now = _book(req.state), req.state.now()
    with req.state.lock:
        existing = sharing.orders.get(body["out_order_no"])
        if existing is None:
            existing = {"fingerprint": "unfreeze", "transaction_id": txn.transaction_id,
                        "out_order_no": body["out_order_no"], "order_id": f"3008450740{next(_ids):010d}",
                        "state": "FINISHED", "receivers": [], "finish_time": rfc3339(now)}
            sharing.orders[body["out_order_no"]] = existing
            sharing.unfrozen.add(txn.transaction_id)
        answer = _order_json(existing)
    return signed(req, 200, answer)


def return_order(req: Request) -> Response:
    body = _body(req)
    if isinstance(body, Response):
        return body
    amount, no = body.get("amount"), body.get("out_return_no")
    if not isinstance(amount, int) or amount <= 0 or not isinstance(no, str):
        return param_error(req, "/amount", "out_return_no and a positive amount are required", amount)
    sharing, now = _book(req.state), req.state.now()
    with req.state.lock:
        existing = sharing.returns.get(no)
        if existing is not None:
            return signed(req, 200, existing)
        order = sharing.orders.get(body.get("out_order_no") or "")
        if order is None:
            return error(req, 404, "RESOURCE_NOT_EXISTS", "分账单不存在")
        received = sum(r["amount"] for r in order["receivers"]
                       if r["type"] == "MERCHANT_ID" and r["account"] == body.get("return_mchid"))
        returned = sum(r["amount"] for r in sharing.returns.values()
                       if r["out_order_no"] == order["out_order_no"] and r["return_mchid"] == body.get("return_mchid"))
        if received == 0:
            return error(req, 400, "INVALID_REQUEST", "回退方不是该分账单的商户接收方")
        if returned + amount > received:
            return error(req, 400, "NOT_ENOUGH", "回退金额超过分账金额")
        answer = {"order_id": order["order_id"], "out_order_no": order["out_order_no"], "out_return_no": no,
                  "return_id": f"3008450740{next(_ids):010d}", "return_mchid": body["return_mchid"],
                  "amount": amount, "description": body.get("description", ""), "result": "SUCCESS",
                  "create_time": rfc3339(now), "finish_time": rfc3339(now)}
        sharing.returns[no] = answer
    return signed(req, 200, answer)


def view(req: Request) -> Response:
    sharing = _book(req.state)
    with req.state.lock:
        answer = {"orders": [_order_json(o) for o in sharing.orders.values()],
                  "returns": list(sharing.returns.values()),
                  "receivers": sorted(list(r) for r in sharing.receivers), "unfrozen": sorted(sharing.unfrozen),
                  "names": dict(sharing.names)}
    return json_response(answer)
