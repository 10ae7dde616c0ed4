"""WeChat Pay APIv2 (XML), as pay.weixin.qq.com/wiki/doc/api documents it:

  POST /pay/unifiedorder     统一下单 (trade_type=JSAPI)
  POST /pay/orderquery       查询订单
  POST /pay/closeorder       关闭订单
  POST /secapi/pay/refund    申请退款

Bodies are flat ``<xml>`` documents (any DOCTYPE/ENTITY is refused), signed
with the API key by MD5 or HMAC-SHA256 per ``sign_type`` (default MD5).
Answers are always HTTP 200: ``return_code`` FAIL (with ``return_msg``) for
protocol errors such as a bad sign, else SUCCESS plus ``result_code`` /
``err_code`` and a sign of the same type as the request's.

/secapi/pay/refund needs the merchant's TLS client certificate at WeChat.
Over the simulator's plain HTTP no certificate can be presented or checked,
so it is accepted and each refund records ``client_cert_presented: false``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import pay_crypto as pc
from .pay_keys import pay_config
from .pay_ops import close_order, find_transaction, place_order, request_refund
from .pay_store import TRADE_STATE_DESC, Transaction, parse_v2_time, v2_time
from .server import Request, Response, Router

XML_TYPE = "text/xml; charset=utf-8"
OUT_TRADE_NO_RE = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")
OUT_REFUND_NO_RE = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")
FEE_RE = re.compile(r"^[1-9][0-9]{0,9}$")


def register(router: Router) -> None:
    router.add("POST", "/pay/unifiedorder", unifiedorder, name="pay_v2_unifiedorder")
    router.add("POST", "/pay/orderquery", orderquery, name="pay_v2_orderquery")
    router.add("POST", "/pay/closeorder", closeorder, name="pay_v2_closeorder")
    router.add("POST", "/secapi/pay/refund", secapi_refund, name="pay_v2_refund")


class _Call:
    """A verified v2 request: its params and the sign type to answer with."""

    def __init__(self, req: Request, params: dict[str, str], sign_type: str) -> None:
        self.req, self.params, self.sign_type = req, params, sign_type

    def answer(self, fields: dict[str, Any]) -> Response:
        config = pay_config(self.req.state)
        out: dict[str, Any] = {"return_code": "SUCCESS", "return_msg": "OK",
                               "appid": self.params["appid"], "mch_id": config.mchid,
                               "nonce_str": pc.nonce_str()}
        out.update({k: str(v) for k, v in fields.items() if v is not None})
        out["sign"] = pc.v2_sign(out, config.api_key, self.sign_type)
        return Response(body=pc.to_xml(out), content_type=XML_TYPE)

    def ok(self, **fields: Any) -> Response:
        return self.answer({"result_code": "SUCCESS", **fields})

    def biz_fail(self, err_code: str, des: str) -> Response:
        return self.answer({"result_code": "FAIL", "err_code": err_code, "err_code_des": des})


def fail(message: str) -> Response:
    return Response(body=pc.to_xml({"return_code": "FAIL", "return_msg": message}),
                    content_type=XML_TYPE)


def _verify(req: Request, required: tuple[str, ...]) -> _Call | Response:
    if not req.body.strip():
        return fail("POST数据为空")
    try:
        params = pc.parse_xml(req.body)
    except pc.XmlError as exc:
        return fail(f"XML格式错误 ({exc})")
    config = pay_config(req.state)
    if params.get("mch_id") != config.mchid or params.get("appid") not in req.state.apps:
        return fail("商户号mch_id与appid不匹配")
    sign_type = params.get("sign_type") or "MD5"
    if sign_type not in pc.V2_SIGN_TYPES:
        return fail("sign_type参数错误 (MD5 or HMAC-SHA256)")
    for name in ("nonce_str", "sign") + required:
        if not params.get(name):
            return fail(f"缺少参数{name}")
    if len(params["nonce_str"]) > 32:
        return fail("nonce_str参数长度有误 (at most 32)")
    if not pc.v2_check_sign(params, config.api_key, sign_type):
        return fail("签名错误")
    return _Call(req, params, sign_type)


def _find(call: _Call) -> Transaction | Response:
    params = call.params
    if not params.get("out_trade_no") and not params.get("transaction_id"):
        return fail("缺少参数out_trade_no")
    txn = find_transaction(call.req.state, params.get("out_trade_no"), params.get("transaction_id"))
    return txn if txn is not None else call.biz_fail("ORDERNOTEXIST", "订单不存在")


# -- 统一下单 -------------------------------------------------------------------------------------

def unifiedorder(req: Request) -> Response:
    call = _verify(req, ("body", "out_trade_no", "total_fee", "spbill_create_ip", "notify_url", "trade_type"))
    if isinstance(call, Response):
        return call
    p = call.params
    if p["trade_type"] != "JSAPI":
        return call.biz_fail("PARAM_ERROR", "trade_type 只支持 JSAPI (simulator)")
    if not p.get("openid"):
        return call.biz_fail("PARAM_ERROR", "trade_type=JSAPI时（即JSAPI支付），此参数必传 (openid)")
    if not OUT_TRADE_NO_RE.match(p["out_trade_no"]):
        return fail("out_trade_no参数格式错误 (6..32 of [0-9A-Za-z_-|*])")
    if not FEE_RE.match(p["total_fee"]):
        return fail("total_fee参数格式错误 (a positive integer of fen)")
    if p.get("fee_type", "CNY") != "CNY" or len(p["body"]) > 128:
        return call.biz_fail("PARAM_ERROR", "fee_type must be CNY and body at most 128 characters")
    if not p["notify_url"].startswith(("http://", "https://")) or "?" in p["notify_url"]:
        return call.biz_fail("PARAM_ERROR", "notify_url 必须是不带参数的 http(s) 地址")
    expire = None
    if p.get("time_expire"):
        try:
            expire = parse_v2_time(p["time_expire"])
        except ValueError:
            return fail("time_expire参数格式错误 (yyyyMMddHHmmss)")
        if expire <= req.state.now():
            return call.biz_fail("INVALID_REQUEST", "time_expire时间过短")
    volatile = ("nonce_str", "sign", "sign_type")
    fields = {"api": "v2", "appid": p["appid"], "mchid": p["mch_id"], "out_trade_no": p["out_trade_no"],
              "description": p["body"], "total": int(p["total_fee"]), "openid": p["openid"],
              "notify_url": p["notify_url"], "attach": p.get("attach", ""), "time_expire": expire,
              "sign_type": call.sign_type,
              "fingerprint": "v2:" + json.dumps({k: v for k, v in p.items() if k not in volatile},
                                                sort_keys=True, ensure_ascii=False)}
    outcome, txn = place_order(req.state, fields)
    if outcome == "paid":
        return call.biz_fail("ORDERPAID", "该订单已支付")
    if outcome == "closed":
        return call.biz_fail("ORDERCLOSED", "该订单已关闭")
    if outcome == "repeat":
        return call.biz_fail("INVALID_REQUEST", "201 商户订单号重复")
    return call.ok(trade_type="JSAPI", prepay_id=txn.prepay_id)


# -- 查询 / 关单 ----------------------------------------------------------------------------------------

def orderquery(req: Request) -> Response:
    call = _verify(req, ())
    if isinstance(call, Response):
        return call
    txn = _find(call)
    if isinstance(txn, Response):
        return txn
    with req.state.lock:
        fields: dict[str, Any] = {"out_trade_no": txn.out_trade_no, "trade_state": txn.trade_state,
                                  "trade_state_desc": TRADE_STATE_DESC[txn.trade_state],
                                  "attach": txn.attach or None}
        if txn.transaction_id:
            fields.update(openid=txn.openid, is_subscribe="N", trade_type="JSAPI", bank_type="OTHERS",
                          total_fee=txn.total, cash_fee=txn.total, fee_type="CNY",
                          transaction_id=txn.transaction_id, time_end=v2_time(txn.success_at or 0))
    return call.ok(**fields)


def closeorder(req: Request) -> Response:
    call = _verify(req, ("out_trade_no",))
    if isinstance(call, Response):
        return call
    txn = _find(call)
    if isinstance(txn, Response):
        return txn
    outcome = close_order(req.state, txn)
    if outcome == "paid":
        return call.biz_fail("ORDERPAID", "订单已支付，不能发起关单")
    if outcome == "already_closed":
        return call.biz_fail("ORDERCLOSED", "订单已关闭，无法重复关闭")
    return call.ok(result_msg="OK")


# -- 申请退款 -------------------------------------------------------------------------------------

REFUND_OUTCOMES = {
    "mismatch": ("INVALID_REQUEST", "订单金额或退款金额与之前请求不一致，请核实后再试"),
    "not_paid": ("TRADE_STATE_ERROR", "订单状态错误 (not paid)"),
    "total_mismatch": ("INVALID_REQUEST", "total_fee与订单金额不一致"),
    "fully_refunded": ("ERROR", "订单已全额退款"),
    "exceeds": ("ERROR", "累计退款金额大于支付金额"),
}


def secapi_refund(req: Request) -> Response:
    call = _verify(req, ("out_refund_no", "total_fee", "refund_fee"))
    if isinstance(call, Response):
        return call
    p = call.params
    if not OUT_REFUND_NO_RE.match(p["out_refund_no"]):
        return fail("out_refund_no参数格式错误")
    if not FEE_RE.match(p["total_fee"]) or not FEE_RE.match(p["refund_fee"]):
        return fail("total_fee/refund_fee参数格式错误")
    if int(p["refund_fee"]) > int(p["total_fee"]):
        return call.biz_fail("INVALID_REQUEST", "退款金额大于订单金额")
    txn = _find(call)
    if isinstance(txn, Response):
        return txn
    outcome, refund = request_refund(req.state, txn, p["out_refund_no"], int(p["refund_fee"]),
                                     int(p["total_fee"]), "v2", p.get("notify_url"),
                                     p.get("refund_desc", ""), client_cert_presented=False)
    if outcome in REFUND_OUTCOMES:
        return call.biz_fail(*REFUND_OUTCOMES[outcome])
    return call.ok(transaction_id=refund.transaction_id, out_trade_no=refund.out_trade_no,
                   out_refund_no=refund.out_refund_no, refund_id=refund.refund_id,
                   refund_fee=refund.refund, settlement_refund_fee=refund.refund,
                   total_fee=refund.total, settlement_total_fee=refund.total, fee_type="CNY",
                   cash_fee=refund.total, cash_refund_fee=refund.refund, coupon_refund_fee=0,
                   coupon_refund_count=0, refund_channel=None)
