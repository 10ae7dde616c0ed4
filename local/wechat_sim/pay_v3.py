"""WeChat Pay APIv3 (JSON), as pay.weixin.qq.com documents it:

  POST /v3/pay/transactions/jsapi                       JSAPI下单 -> {"prepay_id"}
  GET  /v3/pay/transactions/out-trade-no/{no}?mchid=    查询订单
  GET  /v3/pay/transactions/id/{transaction_id}?mchid=  查询订单 (by WeChat's id)
  POST /v3/pay/transactions/out-trade-no/{no}/close     关闭订单 -> 204
  POST /v3/refund/domestic/refunds                      申请退款
  GET  /v3/refund/domestic/refunds/{out_refund_no}      查询单笔退款
  GET  /v3/certificates                                 下载平台证书

Every request must carry ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=..,
nonce_str=..,timestamp=..,serial_no=..,signature=..`` over
``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n`` by the merchant key (else 401
SIGN_ERROR); every answer is signed (``Wechatpay-*`` headers) over
``TIMESTAMP\\nNONCE\\nBODY\\n`` by the platform key chosen by ``sign_with``.
Errors are ``{"code", "message"}`` with WeChat's HTTP statuses.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from . import pay_crypto as pc
from .pay_keys import pay_config
from .pay_ops import close_order, find_transaction, place_order, request_refund
from .pay_store import book, parse_rfc3339, rfc3339, v3_refund_json, v3_transaction_json
from .server import Request, Response, Router

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
MAX_SKEW_S = 300
OUT_TRADE_NO_RE = re.compile(r"^[0-9A-Za-z_\-*]{6,32}$")
OUT_REFUND_NO_RE = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")
_AUTH_FIELD_RE = re.compile(r'(\w+)="([^"]*)"')


def register(router: Router) -> None:
    router.add("POST", "/v3/pay/transactions/jsapi", jsapi, name="pay_v3_jsapi")
    router.add("GET", "/v3/pay/transactions/out-trade-no/{no}", query, name="pay_v3_query")
    router.add("GET", "/v3/pay/transactions/id/{transaction_id}", query, name="pay_v3_query_by_id")
    router.add("POST", "/v3/pay/transactions/out-trade-no/{no}/close", close, name="pay_v3_close")
    router.add("POST", "/v3/refund/domestic/refunds", refund, name="pay_v3_refund")
    router.add("GET", "/v3/refund/domestic/refunds/{out_refund_no}", refund_query,
               name="pay_v3_refund_query")
    router.add("GET", "/v3/certificates", certificates, name="pay_v3_certificates")


# -- signing both ways ----------------------------------------------------------------------

def signed(req: Request, status: int, obj: Any = None) -> Response:
    """A JSON answer carrying WeChat's response-signature headers."""
    body = b"" if obj is None else json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    serial, key = pay_config(req.state).signer()
    stamp, nonce = str(int(req.state.wall_now())), pc.nonce_str(32)
    signature = pc.rsa_sign(key, f"{stamp}\n{nonce}\n{body.decode('utf-8')}\n")
    headers = {"Wechatpay-Timestamp": stamp, "Wechatpay-Nonce": nonce, "Wechatpay-Signature": signature,
               "Wechatpay-Serial": serial, "Wechatpay-Signature-Type": AUTH_SCHEME,
               "Request-ID": str(uuid.uuid4())}
    return Response(status=status, body=body, headers=headers)


def error(req: Request, status: int, code: str, message: str, detail: dict | None = None) -> Response:
    obj: dict[str, Any] = {"code": code, "message": message}
    if detail:
        obj["detail"] = detail
    return signed(req, status, obj)


def param_error(req: Request, field: str, issue: str, value: Any = None) -> Response:
    return error(req, 400, "PARAM_ERROR", f"{field}: {issue}",
                 {"location": "body", "field": field, "value": value, "issue": issue})


def verify_request(req: Request) -> Response | None:
    """None if the merchant signature is good, else the 401 SIGN_ERROR answer."""
    config = pay_config(req.state)
    scheme, _, rest = (req.headers.get("Authorization") or "").partition(" ")
    if scheme != AUTH_SCHEME:
        return _sign_error(req, f"Authorization must use the {AUTH_SCHEME} scheme")
    fields = dict(_AUTH_FIELD_RE.findall(rest))
    missing = [k for k in ("mchid", "nonce_str", "timestamp", "serial_no", "signature") if not fields.get(k)]
    if missing:
        return _sign_error(req, f"Authorization is missing {', '.join(missing)}")
    if fields["mchid"] != config.mchid:
        return _sign_error(req, f"unknown mchid {fields['mchid']!r} in Authorization")
    if config.merchant_key is None:
        return _sign_error(req, "the simulator has no merchant certificate/public key configured "
                                "(start_simulator(merchant_cert=...) or --merchant-cert)")
    if config.merchant_serial and fields["serial_no"].upper() != config.merchant_serial:
        return _sign_error(req, f"serial_no {fields['serial_no']} is not the merchant certificate's "
                                f"({config.merchant_serial})")
    if not fields["timestamp"].isdigit() or abs(req.state.wall_now() - int(fields["timestamp"])) > MAX_SKEW_S:
        return _sign_error(req, "timestamp is more than 5 minutes away from WeChat Pay's clock")
    try:
        body = req.body.decode("utf-8")
    except UnicodeDecodeError:
        return _sign_error(req, "body is not UTF-8")
    message = f"{req.method}\n{_url(req)}\n{fields['timestamp']}\n{fields['nonce_str']}\n{body}\n"
    if not pc.rsa_verify(config.merchant_key, message, fields["signature"]):
        return _sign_error(req, "错误的签名，验签失败 (signature does not verify with the merchant key)")
    return None


def _url(req: Request) -> str:
    target = req.target or req.path
    if target.startswith(("http://", "https://")):  # absolute-form request target
        split = urlsplit(target)
        target = split.path + (f"?{split.query}" if split.query else "")
    return target


def _sign_error(req: Request, message: str) -> Response:
    return error(req, 401, "SIGN_ERROR", message)


def _json_body(req: Request) -> dict[str, Any] | Response:
    try:
        value = json.loads(req.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return error(req, 400, "PARAM_ERROR", "请求体不是合法的JSON (body is not valid JSON)")
    if not isinstance(value, dict):
        return error(req, 400, "PARAM_ERROR", "body must be a JSON object")
    return value


def _str(value: Any, low: int, high: int) -> bool:
    return isinstance(value, str) and low <= len(value) <= high


def _pos_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _mchid_check(req: Request, mchid: Any, where: str) -> Response | None:
    if not _str(mchid, 1, 32):
        return param_error(req, where, "必填 (required)", mchid)
    if mchid != pay_config(req.state).mchid:
        code = "APPID_MCHID_NOT_MATCH" if where == "/mchid" else "PARAM_ERROR"
        return error(req, 400, code, f"{where} {mchid!r} is not the merchant of this request")
    return None


# -- JSAPI下单 -----------------------------------------------------------------------------------

def _validate_jsapi(req: Request, body: dict[str, Any]) -> Response | None:
    if not _str(body.get("appid"), 1, 32):
        return param_error(req, "/appid", "必填 (required)", body.get("appid"))
    problem = _mchid_check(req, body.get("mchid"), "/mchid")
    if problem:
        return problem
    if body["appid"] not in req.state.apps:
        return error(req, 400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配，请检查后再试")
    if not _str(body.get("description"), 1, 127):
        return param_error(req, "/description", "1..127 characters required", body.get("description"))
    if not isinstance(body.get("out_trade_no"), str) or not OUT_TRADE_NO_RE.match(body["out_trade_no"]):
        return param_error(req, "/out_trade_no", "6..32 characters of [0-9A-Za-z_-*]", body.get("out_trade_no"))
    url = body.get("notify_url")
    split = urlsplit(url) if _str(url, 1, 255) else None
    if split is None or split.scheme not in ("http", "https") or not split.netloc or split.query:
        return param_error(req, "/notify_url", "an absolute http(s) URL without query parameters", url)
    amount, payer = body.get("amount"), body.get("payer")
    if not isinstance(amount, dict) or not _pos_int(amount.get("total")):
        return param_error(req, "/amount/total", "a positive integer number of fen", amount)
    if amount.get("currency", "CNY") != "CNY":
        return param_error(req, "/amount/currency", "must be CNY", amount.get("currency"))
    if not isinstance(payer, dict) or not _str(payer.get("openid"), 1, 128):
        return param_error(req, "/payer/openid", "必填 (required)", payer)
    if body.get("attach") is not None and not _str(body["attach"], 0, 128):
        return param_error(req, "/attach", "at most 128 characters", body["attach"])
    if body.get("time_expire") is not None:
        try:
            expire = parse_rfc3339(body["time_expire"])
        except (TypeError, ValueError):
            return param_error(req, "/time_expire", "RFC 3339, e.g. 2018-06-08T10:34:56+08:00",
                               body["time_expire"])
        if expire <= req.state.now():
            return error(req, 400, "INVALID_REQUEST", "time_expire已过期 (time_expire is in the past)")
    return None


def jsapi(req: Request) -> Response:
    body = verify_request(req) or _json_body(req)
    if isinstance(body, Response):
        return body
    problem = _validate_jsapi(req, body)
    if problem:
        return problem
    fields = {"api": "v3", "appid": body["appid"], "mchid": body["mchid"],
              "out_trade_no": body["out_trade_no"], "description": body["description"],
              "total": body["amount"]["total"], "openid": body["payer"]["openid"],
              "notify_url": body["notify_url"], "attach": body.get("attach") or "",
              "time_expire": parse_rfc3339(body["time_expire"]) if body.get("time_expire") else None,
              "fingerprint": "v3:" + json.dumps(body, sort_keys=True, ensure_ascii=False),
              "profit_sharing": (body.get("settle_info") or {}).get("profit_sharing") is True}
    outcome, txn = place_order(req.state, fields)
    if outcome == "paid":
        return error(req, 400, "ORDERPAID", "该订单已支付")
    if outcome == "closed":
        return error(req, 400, "ORDER_CLOSED", "该订单已关闭")
    if outcome == "repeat":
        return error(req, 400, "INVALID_REQUEST", "201 商户订单号重复")
    return signed(req, 200, {"prepay_id": txn.prepay_id})


# -- 查询 / 关单 ------------------------------------------------------------------------------------

def query(req: Request) -> Response:
    problem = verify_request(req) or _mchid_check(req, req.query.get("mchid"), "mchid (query)")
    if problem:
        return problem
    txn = find_transaction(req.state, req.params.get("no"), req.params.get("transaction_id"))
    if txn is None:
        return error(req, 404, "ORDER_NOT_EXIST", "订单不存在")
    with req.state.lock:
        answer = v3_transaction_json(txn)
    return signed(req, 200, answer)


def close(req: Request) -> Response:
    body = verify_request(req) or _json_body(req)
    if isinstance(body, Response):
        return body
    problem = _mchid_check(req, body.get("mchid"), "/mchid")
    if problem:
        return problem
    txn = find_transaction(req.state, req.params["no"], None)
    if txn is None:
        return error(req, 404, "ORDER_NOT_EXIST", "订单不存在")
    if close_order(req.state, txn) == "paid":
        return error(req, 400, "ORDERPAID", "订单已支付")
    return signed(req, 204)


# -- 退款 ----------------------------------------------------------------------------------------

REFUND_OUTCOMES = {
    "mismatch": (400, "INVALID_REQUEST", "商户退款单号已存在，且金额与原退款请求不一致"),
    "not_paid": (400, "INVALID_REQUEST", "订单未支付，不能退款"),
    "total_mismatch": (400, "INVALID_REQUEST", "amount.total 与原订单金额不一致"),
    "fully_refunded": (400, "INVALID_REQUEST", "订单已全额退款"),
    "exceeds": (400, "INVALID_REQUEST", "申请退款金额超过订单可退金额"),
}


def _validate_refund(req: Request, body: dict[str, Any]) -> Response | None:
    if not (_str(body.get("out_trade_no"), 1, 32) or _str(body.get("transaction_id"), 1, 32)):
        return param_error(req, "/out_trade_no", "out_trade_no or transaction_id is required")
    no = body.get("out_refund_no")
    if not isinstance(no, str) or not OUT_REFUND_NO_RE.match(no):
        return param_error(req, "/out_refund_no", "1..64 characters of [0-9A-Za-z_-|*@]", no)
    amount = body.get("amount")
    if not isinstance(amount, dict) or not _pos_int(amount.get("refund")) or not _pos_int(amount.get("total")):
        return param_error(req, "/amount", "refund and total must be positive integers (fen)", amount)
    if amount.get("currency") != "CNY":
        return param_error(req, "/amount/currency", "必填, CNY", amount.get("currency"))
    if amount["refund"] > amount["total"]:
        return param_error(req, "/amount/refund", "refund must not exceed total", amount["refund"])
    if body.get("reason") is not None and not _str(body["reason"], 0, 80):
        return param_error(req, "/reason", "at most 80 characters", body["reason"])
    url = body.get("notify_url")
    if url is not None and (not _str(url, 1, 256) or urlsplit(url).scheme not in ("http", "https")):
        return param_error(req, "/notify_url", "an absolute http(s) URL", url)
    return None


def refund(req: Request) -> Response:
    body = verify_request(req) or _json_body(req)
    if isinstance(body, Response):
        return body
    problem = _validate_refund(req, body)
    if problem:
        return problem
    txn = find_transaction(req.state, body.get("out_trade_no"), body.get("transaction_id"))
    if txn is None:
        return error(req, 404, "RESOURCE_NOT_EXISTS", "订单不存在")
    outcome, record = request_refund(req.state, txn, body["out_refund_no"], body["amount"]["refund"],
                                     body["amount"]["total"], "v3", body.get("notify_url"),
                                     body.get("reason") or "")
    if outcome in REFUND_OUTCOMES:
        return error(req, *REFUND_OUTCOMES[outcome])
    with req.state.lock:
        answer = v3_refund_json(record)
    return signed(req, 200, answer)


def refund_query(req: Request) -> Response:
    problem = verify_request(req)
    if problem:
        return problem
    with req.state.lock:
        record = book(req.state).refunds.get(req.params["out_refund_no"])
        answer = v3_refund_json(record) if record else None
    if answer is None:
        return error(req, 404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    return signed(req, 200, answer)


# -- 平台证书 -------------------------------------------------------------------------------------

def certificates(req: Request) -> Response:
    problem = verify_request(req)
    if problem:
        return problem
    config = pay_config(req.state)
    platform = config.platform
    cert = x509.load_pem_x509_certificate(platform.cert_pem)
    nonce = pc.nonce_str(12)
    ciphertext = pc.gcm_encrypt(config.apiv3_key.encode("utf-8"), nonce, "certificate",
                                platform.cert_pem.decode("ascii"))
    return signed(req, 200, {"data": [{
        "serial_no": platform.cert_serial,
        "effective_time": rfc3339(cert.not_valid_before_utc.timestamp()),
        "expire_time": rfc3339(cert.not_valid_after_utc.timestamp()),
        "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM", "nonce": nonce,
                                "associated_data": "certificate", "ciphertext": ciphertext},
    }]})
