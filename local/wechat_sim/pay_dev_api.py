"""Dev-only WeChat Pay controls under /__sim/pay/ (never part of WeChat).

  GET  /__sim/pay/platform                 platform cert/public key (+ ids) for the app's config
  POST /__sim/pay/config {"sign_with"}     switch the key that signs answers/notifies
  POST /__sim/pay/pay                      the user pays an order; the notify goes out
  POST /__sim/pay/request-payment          the same, from wx.requestPayment params (checks paySign)
  POST /__sim/pay/refund-notify            finish a PROCESSING refund (or notify it again)
  POST /__sim/pay/release                  deliver held notifies, in the order given
  GET  /__sim/pay/notifies                 every notify with every attempt
  GET  /__sim/pay/transactions[/{no}]      what WeChat knows about orders and refunds

Delivery knobs accepted by pay, request-payment and refund-notify:
duplicate, concurrent, delay_ms, corrupt, hold, max_attempts, wait, wait_timeout_s
(see pay_notify.DeliveryKnobs).
"""

from __future__ import annotations

from typing import Any

from . import pay_crypto as pc
from . import pay_notify
from .pay_keys import pay_config
from .pay_ops import PREPAY_TTL_S, PayError, complete_refund, pay_order
from .pay_store import book, transaction_view
from .server import Request, Response, Router, json_response


def register(router: Router) -> None:
    router.add("GET", "/__sim/pay/platform", platform)
    router.add("POST", "/__sim/pay/config", set_config)
    router.add("POST", "/__sim/pay/pay", pay)
    router.add("POST", "/__sim/pay/request-payment", request_payment)
    router.add("POST", "/__sim/pay/refund-notify", refund_notify)
    router.add("POST", "/__sim/pay/release", release)
    router.add("GET", "/__sim/pay/notifies", notifies)
    router.add("GET", "/__sim/pay/transactions", transactions)
    router.add("GET", "/__sim/pay/transactions/{no}", transaction)


def _bad(message: str, status: int = 400) -> Response:
    return json_response({"ok": False, "error": message}, status=status)


def platform(req: Request) -> Response:
    return json_response(pay_config(req.state).public_view())


def set_config(req: Request) -> Response:
    try:
        pay_config(req.state).set_sign_with(req.json_object().get("sign_with"))
    except ValueError as exc:
        return _bad(str(exc))
    return json_response({"ok": True, "sign_with": pay_config(req.state).sign_with})


def _deliver(req: Request, body: dict[str, Any], action: Any) -> Response:
    """Parse knobs, run ``action(knobs)`` -> (payload, jobs), answer with the notifies."""
    try:
        knobs = pay_notify.DeliveryKnobs.parse(body)
        payload, jobs = action(knobs)
    except pay_notify.KnobError as exc:
        return _bad(str(exc))
    except PayError as exc:
        return _bad(exc.message, exc.status)
    except pay_notify.TooBusy as exc:
        return _bad(str(exc), 503)
    with req.state.lock:
        payload["notifies"] = [job.view() for job in jobs]
    return json_response({"ok": True, **payload})


def _pay(req: Request, body: dict[str, Any], out_trade_no: Any) -> Response:
    openid, force = body.get("openid"), body.get("force", False)
    if not isinstance(out_trade_no, str) or not out_trade_no:
        return _bad("out_trade_no is required")
    if (openid is not None and not isinstance(openid, str)) or not isinstance(force, bool):
        return _bad("openid must be a string and force a boolean")

    def action(knobs: pay_notify.DeliveryKnobs) -> tuple[dict, list]:
        txn, newly, jobs = pay_order(req.state, out_trade_no, openid, force, knobs)
        with req.state.lock:
            return {"newly_paid": newly, "transaction": transaction_view(book(req.state), txn)}, jobs

    return _deliver(req, body, action)


def pay(req: Request) -> Response:
    body = req.json_object()
    return _pay(req, body, body.get("out_trade_no"))


def request_payment(req: Request) -> Response:
    """Pay as the mini-program would: check wx.requestPayment's parameters
    (all strings; paySign by the merchant key for RSA, the API key for
    MD5/HMAC-SHA256, matching the order's API) and then pay."""
    body = req.json_object()
    names = ("timeStamp", "nonceStr", "package", "signType", "paySign")
    for name in names:
        if not isinstance(body.get(name), str) or not body[name]:
            return _bad(f"wx.requestPayment: {name} must be a non-empty string")
    prepay_id = body["package"].removeprefix("prepay_id=")
    pay_book, config = book(req.state), pay_config(req.state)
    with req.state.lock:
        txn = pay_book.transactions.get(pay_book.by_prepay_id.get(prepay_id, ""))
        if txn is None or not body["package"].startswith("prepay_id="):
            return _bad("package must be prepay_id=<an issued prepay_id>")
        if txn.prepay_id != prepay_id or req.state.now() - txn.prepay_at > PREPAY_TTL_S:
            return _bad("prepay_id expired", 409)
        appid, api, sign_type = body.get("appId") or txn.appid, txn.api, txn.sign_type
    fields = {"appId": appid, "timeStamp": body["timeStamp"], "nonceStr": body["nonceStr"],
              "package": body["package"], "signType": body["signType"]}
    if api == "v3":
        message = f"{appid}\n{body['timeStamp']}\n{body['nonceStr']}\n{body['package']}\n"
        good = (body["signType"] == "RSA" and config.merchant_key is not None
                and pc.rsa_verify(config.merchant_key, message, body["paySign"]))
    else:
        good = (body["signType"] == sign_type
                and pc.v2_check_sign({**fields, "sign": body["paySign"]}, config.api_key, sign_type))
    if not good:
        return _bad(f"paySign does not verify (a {api} order wants signType "
                    f"{'RSA' if api == 'v3' else sign_type})")
    return _pay(req, body, txn.out_trade_no)


def refund_notify(req: Request) -> Response:
    body = req.json_object()
    out_refund_no, status = body.get("out_refund_no"), body.get("status", "SUCCESS")
    if not isinstance(out_refund_no, str) or not out_refund_no:
        return _bad("out_refund_no is required")

    def action(knobs: pay_notify.DeliveryKnobs) -> tuple[dict, list]:
        refund, jobs = complete_refund(req.state, out_refund_no, status, knobs)
        return {"refund_status": refund.status}, jobs

    return _deliver(req, body, action)


def release(req: Request) -> Response:
    body = req.json_object()
    ids, order = body.get("ids"), body.get("order", "fifo")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        return _bad("ids must be a list of notify ids")
    if order not in ("fifo", "lifo"):
        return _bad("order must be fifo or lifo")
    try:
        jobs = pay_notify.release(req.state, ids, order)
    except pay_notify.KnobError as exc:
        return _bad(str(exc))
    with req.state.lock:
        return json_response({"ok": True, "released": [job.view() for job in jobs]})


def notifies(req: Request) -> Response:
    q = req.query
    return json_response({"items": pay_notify.views(
        req.state, out_trade_no=q.get("out_trade_no"), out_refund_no=q.get("out_refund_no"),
        kind=q.get("kind"), status=q.get("status"))})


def transactions(req: Request) -> Response:
    pay_book = book(req.state)
    with req.state.lock:
        return json_response({"items": [transaction_view(pay_book, t) for t in pay_book.transactions.values()]})


def transaction(req: Request) -> Response:
    pay_book = book(req.state)
    with req.state.lock:
        txn = pay_book.transactions.get(req.params["no"])
        if txn is None:
            return _bad(f"no transaction {req.params['no']!r}", 404)
        return json_response(transaction_view(pay_book, txn))
