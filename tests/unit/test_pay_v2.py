"""Pay v2 behaviour: MD5 and HMAC-SHA256 notifies, the XML guard, refund notifies, replies, and a
client round trip against a tiny WeChat Pay v2 on 127.0.0.1 that checks our signs and signs its answers."""
from __future__ import annotations

import os
import tempfile
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chalicelib.wechat import pay_http, pay_v2
from chalicelib.wechat.pay_types import PayApiError, PayNotifyUnsupported, PaySignatureError, PayUnavailable

API_KEY = "192006250b4c09247ec02edce69f6a2d"  # the public doc example key
APPID, MCHID = "wx_test_appid", "10000100"
VECTORS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "wechat-vectors"


def xml(fields: dict[str, str]) -> bytes:
    inner = "".join(f"<{name}><![CDATA[{value}]]></{name}>" for name, value in fields.items())
    return f"<xml>{inner}</xml>".encode()


def signed(fields: dict[str, str], sign_type: str = "MD5", key: str = API_KEY) -> dict[str, str]:
    return {**fields, "sign": pay_v2.sign_v2(fields, key, sign_type)}


PAID = {"appid": APPID, "mch_id": MCHID, "nonce_str": "5d2b6c2a8db53831", "openid": "oUser1", "result_code": "SUCCESS",
        "return_code": "SUCCESS", "out_trade_no": "T20240501001", "total_fee": "1999", "trade_type": "JSAPI",
        "transaction_id": "4200000001202405011", "time_end": "20240501200005", "bank_type": "CMC", "attach": ""}


# ---------------------------------------------------------------- notifies

@pytest.mark.parametrize("sign_type", ["MD5", "HMAC-SHA256"])
def test_pay_notify_verified_with_the_sign_type_it_names(sign_type):
    fields = {**PAID, "sign_type": sign_type} if sign_type != "MD5" else dict(PAID)
    notification = pay_v2.parse_pay_notify(xml(signed(fields, sign_type)), API_KEY)
    tx = notification.transaction
    assert (notification.kind, notification.notify_id) == ("payment", "4200000001202405011")
    assert (tx.out_trade_no, tx.trade_state, tx.amount_total_fen, tx.payer_openid, tx.appid, tx.mchid) == (
        "T20240501001", "SUCCESS", 1999, "oUser1", APPID, MCHID)
    assert tx.success_time == datetime(2024, 5, 1, 12, 0, 5, tzinfo=timezone.utc)


def test_hmac_notify_without_sign_type_uses_the_configured_default():
    body = xml(signed(PAID, "HMAC-SHA256"))
    pay_v2.parse_notify_xml(body, API_KEY, default_sign_type="HMAC-SHA256")
    with pytest.raises(PaySignatureError):
        pay_v2.parse_notify_xml(body, API_KEY)  # read as MD5, it does not verify


@pytest.mark.parametrize("tamper", ["amount", "sign", "key", "no_sign", "sign_type", "unknown_sign_type"])
def test_tampered_v2_notifies_are_refused(tamper):
    fields = signed({**PAID, "sign_type": "HMAC-SHA256"}, "HMAC-SHA256")
    key = API_KEY
    if tamper == "amount":
        fields["total_fee"] = "1"
    elif tamper == "sign":
        fields["sign"] = fields["sign"][:-1] + ("0" if fields["sign"][-1] != "0" else "1")
    elif tamper == "key":
        key = API_KEY[::-1]
    elif tamper == "no_sign":
        del fields["sign"]
    elif tamper == "sign_type":  # the same sign claimed as MD5
        fields["sign_type"] = "MD5"
    elif tamper == "unknown_sign_type":
        fields["sign_type"] = "SHA1"
    with pytest.raises(PaySignatureError):
        pay_v2.parse_pay_notify(xml(fields), key)


def test_a_failed_payment_notify_maps_to_payerror():
    notification = pay_v2.parse_pay_notify(xml(signed({**PAID, "result_code": "FAIL", "err_code": "X"})), API_KEY)
    assert notification.transaction.trade_state == "PAYERROR"


@pytest.mark.parametrize("status, ours", [("SUCCESS", "SUCCESS"), ("CHANGE", "ABNORMAL"), ("REFUNDCLOSE", "CLOSED")])
def test_refund_notify_decrypts_and_maps(status, ours):
    inner = ("<root><out_refund_no><![CDATA[R1]]></out_refund_no><out_trade_no><![CDATA[T1]]></out_trade_no>"
             "<refund_fee>500</refund_fee><total_fee>1999</total_fee><refund_id><![CDATA[5030010318]]></refund_id>"
             f"<refund_status><![CDATA[{status}]]></refund_status><transaction_id>42000004</transaction_id>"
             "<success_time><![CDATA[2024-05-02 10:00:00]]></success_time></root>")
    body = xml({"return_code": "SUCCESS", "appid": APPID, "mch_id": MCHID, "nonce_str": "n",
                "req_info": pay_v2.encrypt_refund_req_info(inner, API_KEY)})
    notification = pay_v2.parse_refund_notify(body, API_KEY)
    refund = notification.refund
    assert (notification.kind, notification.notify_id, refund.status) == ("refund", "5030010318", ours)
    assert (refund.out_refund_no, refund.out_trade_no, refund.refund_fen, refund.total_fen) == ("R1", "T1", 500, 1999)
    assert refund.success_time == datetime(2024, 5, 2, 2, 0, tzinfo=timezone.utc)
    with pytest.raises(PaySignatureError):
        pay_v2.parse_refund_notify(body, API_KEY[::-1])
    with pytest.raises(PayNotifyUnsupported):
        pay_v2.parse_refund_notify(xml({"return_code": "FAIL", "return_msg": "x"}), API_KEY)


# ---------------------------------------------------------------- the XML guard

BILLION_LAUGHS = b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><xml><a>&lol2;</a></xml>'


@pytest.mark.parametrize("body, error", [
    (BILLION_LAUGHS, pay_v2.UnsafeXml),
    (b'<!doctype xml SYSTEM "http://127.0.0.1:9/x.dtd"><xml><a>1</a></xml>', pay_v2.UnsafeXml),
    ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><a>&e;</a></xml>'
     .encode("utf-16"), pay_v2.MalformedXml),
    (b"<xml><a>1</a><a>2</a></xml>", pay_v2.MalformedXml),
    (b"<xml><a>1</xml>", pay_v2.MalformedXml),
    (b"\xff\xfe not utf-8", pay_v2.MalformedXml),
])
def test_hostile_or_broken_xml_is_refused(body, error):
    with pytest.raises(error):
        pay_v2.parse_xml(body)
    with pytest.raises(PaySignatureError):  # what a notify handler catches
        pay_v2.parse_pay_notify(body, API_KEY)


# ---------------------------------------------------------------- replies and pay parameters

def test_notify_replies():
    assert pay_v2.notify_reply(True) == b"<xml><return_code>SUCCESS</return_code></xml>"
    assert pay_v2.notify_reply(False, "amount <mismatch>") == (
        b"<xml><return_code>FAIL</return_code><return_msg>amount &lt;mismatch&gt;</return_msg></xml>")
    assert pay_v2.parse_xml(pay_v2.notify_reply(False, "a&b")) == {"return_code": "FAIL", "return_msg": "a&b"}


def test_jsapi_pay_params_v2_with_hmac():
    params = pay_v2.jsapi_pay_params_v2(APPID, "wx20240501", API_KEY, "HMAC-SHA256", timestamp=1714564800, nonce="abc")
    assert params == {"timeStamp": "1714564800", "nonceStr": "abc", "package": "prepay_id=wx20240501",
                      "signType": "HMAC-SHA256", "paySign": pay_v2.sign_v2(
                          {"appId": APPID, "timeStamp": "1714564800", "nonceStr": "abc",
                           "package": "prepay_id=wx20240501", "signType": "HMAC-SHA256"}, API_KEY, "HMAC-SHA256")}


# ---------------------------------------------------------------- client round trip

class FakeWeChatPayV2(BaseHTTPRequestHandler):
    """Checks the sign of what we send (with the sign_type we name) and answers signed XML."""
    answers: dict = {}
    seen: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        request = pay_v2.parse_xml(self.rfile.read(int(self.headers["Content-Length"])))
        try:
            pay_v2.verify_sign_v2(request, API_KEY)
            verified = True
        except PaySignatureError:
            verified = False
        self.seen.append({"path": self.path, "fields": request, "verified": verified})
        status, fields, mode = self.answers.get(self.path, (200, {"return_code": "FAIL", "return_msg": "no route"}, ""))
        if not verified:
            fields, mode = {"return_code": "FAIL", "return_msg": "签名错误"}, ""
        if mode:
            fields = signed({"appid": APPID, "mch_id": MCHID, "nonce_str": "x", **fields}, request.get("sign_type", "MD5"))
            if mode == "bad":
                fields["sign"] = "0" * len(fields["sign"])
        data = xml(fields) if status != 299 else b"<html>gateway</html"
        self.send_response(200 if status == 299 else status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(params=["MD5", "HMAC-SHA256"])
def wechat_pay_v2(request):
    FakeWeChatPayV2.answers, FakeWeChatPayV2.seen = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeWeChatPayV2)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    client = pay_v2.PayV2Client(APPID, MCHID, API_KEY, request.param, f"http://127.0.0.1:{server.server_address[1]}",
                                timeout=3.0)
    yield client, FakeWeChatPayV2
    server.shutdown()
    server.server_close()


OK = {"return_code": "SUCCESS", "result_code": "SUCCESS"}


def test_client_round_trip_v2(wechat_pay_v2):
    client, fake = wechat_pay_v2
    fake.answers.update({
        "/pay/unifiedorder": (200, {**OK, "prepay_id": "wx20240501", "trade_type": "JSAPI"}, "sign"),
        "/pay/orderquery": (200, {**PAID, "trade_state": "SUCCESS"}, "sign"),
        "/pay/closeorder": (200, OK, "sign"),
        "/secapi/pay/refund": (200, {**OK, "out_trade_no": "T1", "out_refund_no": "R1", "refund_id": "50300",
                                     "refund_fee": "500", "total_fee": "1999", "transaction_id": "4200"}, "sign"),
    })
    expire = datetime(2024, 5, 1, 12, 15, tzinfo=timezone.utc)
    assert client.unifiedorder("T1", "测试 & <商品>", 1999, "oUser1", expire, "https://x/n", "127.0.0.1") == "wx20240501"
    assert client.orderquery("T20240501001").trade_state == "SUCCESS"
    client.closeorder("T1")
    refund = client.refund("T1", "R1", 500, 1999, "退货", "https://x/r")  # http:// base: no client certificate
    assert (refund.refund_id, refund.refund_fen, refund.status) == ("50300", 500, "PROCESSING")
    assert all(seen["verified"] for seen in fake.seen) and len(fake.seen) == 4
    order = fake.seen[0]["fields"]
    assert (order["time_expire"], order["total_fee"], order["body"], order["trade_type"]) == (
        "20240501201500", "1999", "测试 & <商品>", "JSAPI")
    refund_request = fake.seen[3]["fields"]
    assert (refund_request["refund_fee"], refund_request["total_fee"]) == ("500", "1999")
    assert order["sign_type"] == client._sign_type


@pytest.mark.parametrize("answer, error", [
    ((200, {**OK, "prepay_id": "wx1"}, "bad"), PaySignatureError),
    ((200, {**OK, "prepay_id": "wx1"}, ""), PaySignatureError),  # mode "": SUCCESS but no sign at all
    ((200, {"return_code": "FAIL", "return_msg": "参数错误"}, ""), PayApiError),
    ((200, {"return_code": "SUCCESS", "result_code": "FAIL", "err_code": "ORDERPAID"}, "sign"), PayApiError),
    ((500, OK, ""), PayUnavailable),
    ((299, OK, ""), PayUnavailable),  # 200 with a body that is not XML
])
def test_client_error_answers_v2(wechat_pay_v2, answer, error):
    client, fake = wechat_pay_v2
    fake.answers["/pay/unifiedorder"] = answer
    with pytest.raises(error) as raised:
        client.unifiedorder("T1", "x", 1, "o", datetime(2024, 5, 1, tzinfo=timezone.utc), "https://x/n", "127.0.0.1")
    if answer[1].get("err_code"):
        assert raised.value.code == "ORDERPAID"


def test_refund_over_https_needs_the_client_certificate():
    client = pay_v2.PayV2Client(APPID, MCHID, API_KEY, "MD5", "https://127.0.0.1:9")
    with pytest.raises(ValueError):
        client.refund("T1", "R1", 500, 1999)


@pytest.mark.skipif(not VECTORS_DIR.is_dir(), reason=f"the shared WeChat vectors are absent ({VECTORS_DIR})")
def test_client_tls_pool_loads_a_matching_pair_and_leaves_no_key_on_disk(monkeypatch):
    made = []
    real = tempfile.TemporaryDirectory

    def recording(*args, **kwargs):
        directory = real(*args, **kwargs)
        made.append(directory.name)
        return directory

    monkeypatch.setattr(tempfile, "TemporaryDirectory", recording)
    cert, key = (VECTORS_DIR / "wechatpay-java-merchant-cert.pem").read_text(), (
        VECTORS_DIR / "wechatpay-java-merchant-private-key.pem").read_text()
    assert pay_http.client_tls_pool(cert, key) is not None
    with pytest.raises(ValueError):  # wechatpy's published key does not belong to its cert
        pay_http.client_tls_pool((VECTORS_DIR / "wechatpy-apiclient-cert.pem").read_text(),
                                 (VECTORS_DIR / "wechatpy-apiclient-key.pem").read_text())
    assert len(made) == 2 and not any(os.path.exists(name) for name in made)
