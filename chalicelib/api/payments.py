"""Paying: the wx.requestPayment parameters, and WeChat Pay's callbacks (v3 JSON, v2 XML).

Callbacks answer as WeChat documents them: v3 success is 204 with no body, failure a 4xx with
`{"code": "FAIL", "message": ...}`; v2 always answers 200 with `<xml><return_code>SUCCESS...`
or FAIL and a return_msg. A failure makes WeChat retry, so anything we could not apply is a
failure, and a duplicate of something applied is a success.
"""
from __future__ import annotations

import json

from chalice import Response

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
from chalicelib.pay_routes import V2_NOTIFY_ROUTE, V2_REFUND_NOTIFY_ROUTE, V3_NOTIFY_ROUTE
from chalicelib.log import get_logger
RequestPaymentParams = lazy_names("chalicelib.schemas.payments", "RequestPaymentParams")

pay_gateway = lazy_module("chalicelib.services.pay_gateway")
pay_types = lazy_module("chalicelib.wechat.pay_types")
payments = lazy_module("chalicelib.services.payments")
refunds = lazy_module("chalicelib.services.refunds")


api = ApiBlueprint(__name__, tag="payments")
log = get_logger(__name__)
XML_TYPES = ("text/xml", "application/xml")

# What the callbacks really take and answer (WeChat's formats, not our envelope), for /openapi.json.
_V3_FAIL = {"content": {"application/json": {"schema": {
    "type": "object", "required": ["code", "message"], "additionalProperties": False,
    "properties": {"code": {"const": "FAIL"}, "message": {"type": "string"}}}}}}
V3_NOTIFY_DOC = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "description": "WeChat Pay's notify, RSA-signed (Wechatpay-* headers), AES-GCM resource"}}}},
    "responses": {"204": {"description": "applied, or a duplicate of one applied"},
                  "400": {"description": "not for us or not supported (WeChat retries)", **_V3_FAIL},
                  "404": {"description": "this store is not configured for WeChat Pay v3", **_V3_FAIL},
                  "401": {"description": "the signature does not verify", **_V3_FAIL},
                  "503": {"description": "could not be applied now (WeChat retries)", **_V3_FAIL}},
}
_XML = {"text/xml": {"schema": {"type": "string"}}}
V2_NOTIFY_DOC = {
    "requestBody": {"required": True, "content": _XML},
    "responses": {"200": {"description": "<xml><return_code>SUCCESS</return_code></xml>, or FAIL with a return_msg",
                          "content": _XML},
                  "404": {"description": "FAIL: this store is not configured for WeChat Pay v2", "content": _XML}},
}


@api.route("POST", "/v1/orders/{order_id}/pay", response=RequestPaymentParams, errors=(404, 409, 502),
           summary="Parameters for wx.requestPayment (all strings); the prepay is reused while the order is unpaid")
def pay_order(request: ApiRequest) -> RequestPaymentParams:
    return RequestPaymentParams(**payments.request_payment(request.user_id, request.params["order_id"],
                                                           request.client_ip))


@api.route("POST", V3_NOTIFY_ROUTE, auth=None, status=204, doc=V3_NOTIFY_DOC,
           summary="WeChat Pay v3 payment and refund notifies")
def wechat_pay_v3_notify(request: ApiRequest) -> Response:
    outcome = _apply(lambda: pay_gateway.gateway().parse_v3_notify(request.raw.headers, request.raw.raw_body or b""),
                     "v3")
    if outcome is None:
        return Response(body="", status_code=204)
    status, message = outcome
    return Response(body=json.dumps({"code": "FAIL", "message": message}), status_code=status,
                    headers={"Content-Type": "application/json"})


@api.route("POST", V2_NOTIFY_ROUTE, auth=None, content_types=XML_TYPES, doc=V2_NOTIFY_DOC,
           summary="WeChat Pay v2 payment notify (XML)")
def wechat_pay_v2_notify(request: ApiRequest) -> Response:
    return _v2_reply(_apply(lambda: pay_gateway.gateway().parse_v2_pay_notify(request.raw.raw_body or b""), "v2"))


@api.route("POST", V2_REFUND_NOTIFY_ROUTE, auth=None, content_types=XML_TYPES, doc=V2_NOTIFY_DOC,
           summary="WeChat Pay v2 refund notify (XML, encrypted req_info)")
def wechat_pay_v2_refund_notify(request: ApiRequest) -> Response:
    return _v2_reply(_apply(lambda: pay_gateway.gateway().parse_v2_refund_notify(request.raw.raw_body or b""), "v2"))


def _apply(parse, channel: str) -> tuple[int, str] | None:
    """Verify and apply; None on success, else (HTTP status, message) for the failure answer."""
    try:
        notification = parse()
    except pay_types.PayProtocolNotConfigured as error:
        # Nothing is verified (there is no key to verify with) and nothing is touched.
        log.warning("notify refused: protocol not configured", channel=channel, reason=str(error))
        return 404, str(error)
    except pay_types.PaySignatureError as error:
        log.warning("notify refused: signature", channel=channel, reason=str(error)[:200])
        return 401, "signature verification failed"
    except pay_types.PayNotifyUnsupported as error:
        log.warning("notify refused: unsupported", channel=channel, reason=str(error)[:200])
        return 400, "unsupported notification"
    try:
        outcome = payments.handle_notification(notification, channel)
    except (payments.NotifyRejected, refunds.UnknownRefund) as error:
        return 400, f"does not match our records: {error}"
    except Exception:  # noqa: BLE001 - DynamoDB or WeChat trouble: WeChat retries later
        log.exception("notify could not be applied; WeChat will retry", channel=channel)
        return 503, "temporarily unable to apply"
    log.info("notify applied", channel=channel, outcome=outcome)
    return None


def _v2_reply(outcome: tuple[int, str] | None) -> Response:
    from chalicelib.wechat import pay_v2  # on first use: see services/pay_gateway.py

    body = pay_v2.notify_reply(outcome is None, "" if outcome is None else outcome[1])
    # WeChat reads v2 answers from the body, always sent with 200; a store not on v2 says 404 too.
    status = 404 if outcome is not None and outcome[0] == 404 else 200
    return Response(body=body.decode("utf-8"), status_code=status, headers={"Content-Type": "text/xml; charset=utf-8"})
