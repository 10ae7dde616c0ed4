"""Pay v3 behaviour: refusing forged/stale/unknown-serial answers and notifies, notify mapping, config
loading, and a client round trip against a tiny WeChat Pay on 127.0.0.1 that checks our
Authorization header with the merchant certificate and signs its answers with the platform key."""
from __future__ import annotations

import base64
import json
import re
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.wechat import pay_v3
from chalicelib.wechat.pay_types import (
    PayApiError, PayNotifyUnsupported, PaySignatureError, PayUnavailable,
)

VECTORS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "wechat-vectors"
if not (VECTORS_DIR / "vectors.json").is_file():
    pytest.skip(f"the shared WeChat vectors (test keys) are not next to the project ({VECTORS_DIR})",
                allow_module_level=True)

MCHID, APPID = "1234567891", "wx_test_appid"
MERCHANT_SERIAL = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115"
PLATFORM_SERIAL = "440024045C4A427599D09BB4E3DE0279F2E813FD"
GO_SERIAL = "D7CE59D1F522D701"
PUB_KEY_ID = "PUB_KEY_ID_0114232134912410000000000000"
APIV3_KEY = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def pem(name: str) -> str:
    return (VECTORS_DIR / name).read_text(encoding="ascii")


PLATFORM_KEY = pem("wechatpay-java-platform-private-key.pem")
GO_KEY = pem("wechatpay-go-test-private-key.pem")


def make_config(api_base: str = "http://127.0.0.1:9", **overrides) -> pay_v3.PayV3Config:
    """Platform certificate mode (wechatpay-go cert) and public-key mode (wechatpay-java key) at once."""
    values = dict(mchid=MCHID, appid=APPID, api_base=api_base,
                  merchant_private_key_pem=pem("wechatpay-java-merchant-private-key.pem"),
                  merchant_cert_serial=MERCHANT_SERIAL, apiv3_key=APIV3_KEY,
                  platform_certs_pem=[pem("wechatpay-go-platform-cert.pem") + pem("wechatpay-java-platform-cert.pem")],
                  platform_public_key_pem=pem("wechatpay-java-platform-public-key.pem"), platform_public_key_id=PUB_KEY_ID)
    values.update(overrides)
    return pay_v3.PayV3Config(**values)


def sign_headers(body: bytes, key: str = PLATFORM_KEY, serial: str = PUB_KEY_ID, when: datetime = NOW,
                 nonce: str = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS") -> dict[str, str]:
    stamp = str(int(when.timestamp()))
    return {"Wechatpay-Timestamp": stamp, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": serial,
            "Wechatpay-Signature": pay_v3.rsa_sign(key, f"{stamp}\n{nonce}\n".encode() + body + b"\n")}


def notify_body(event_type: str, resource_plain: dict, key: str = APIV3_KEY, original_type: str = "transaction") -> bytes:
    nonce, aad = "fdasflkja484", original_type
    ciphertext = AESGCM(key.encode()).encrypt(nonce.encode(), json.dumps(resource_plain).encode(), aad.encode())
    return json.dumps({
        "id": "EV-2018022511223320873", "create_time": "2024-05-01T20:00:00+08:00", "resource_type": "encrypt-resource",
        "event_type": event_type, "summary": "支付成功",
        "resource": {"original_type": original_type, "algorithm": "AEAD_AES_256_GCM", "associated_data": aad,
                     "nonce": nonce, "ciphertext": base64.b64encode(ciphertext).decode()}}, ensure_ascii=False).encode()


TRANSACTION = {"appid": APPID, "mchid": MCHID, "out_trade_no": "T20240501001", "transaction_id": "4200000001202405011",
               "trade_type": "JSAPI", "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "CMC",
               "success_time": "2024-05-01T20:00:05+08:00", "payer": {"openid": "oUser1"},
               "amount": {"total": 1999, "payer_total": 1999, "currency": "CNY", "payer_currency": "CNY"}}
REFUND = {"mchid": MCHID, "out_trade_no": "T20240501001", "transaction_id": "4200000001202405011",
          "out_refund_no": "R1", "refund_id": "50000000382019052709732678859", "refund_status": "SUCCESS",
          "success_time": "2024-05-02T10:00:00+08:00", "user_received_account": "招商银行信用卡0403",
          "amount": {"total": 1999, "refund": 500, "payer_total": 1999, "payer_refund": 500}}


# ---------------------------------------------------------------- verification

def test_a_good_notify_verifies_by_public_key_id_and_by_certificate_serial_alike():
    config, body = make_config(), notify_body("TRANSACTION.SUCCESS", TRANSACTION)
    by_key_id = pay_v3.parse_notify(sign_headers(body), body, config, NOW)
    by_cert = pay_v3.parse_notify(sign_headers(body, PLATFORM_KEY, PLATFORM_SERIAL), body, config, NOW)
    by_other_cert = pay_v3.parse_notify(sign_headers(body, GO_KEY, GO_SERIAL), body, config, NOW)
    assert by_key_id == by_cert == by_other_cert
    with pytest.raises(PaySignatureError):  # a real key, but not the one this serial names
        pay_v3.parse_notify(sign_headers(body, GO_KEY, PUB_KEY_ID), body, config, NOW)


def test_headers_are_read_case_insensitively():
    body = b'{"a":1}'
    headers = {name.lower(): value for name, value in sign_headers(body).items()}
    pay_v3.verify_signature(headers, body, pay_v3.platform_keys(make_config()), NOW)


@pytest.mark.parametrize("tamper", ["body", "signature", "timestamp", "nonce", "serial", "base64", "missing",
                                    "scheme"])
def test_tampered_notifies_are_refused(tamper):
    body = notify_body("TRANSACTION.SUCCESS", TRANSACTION)
    headers = sign_headers(body)
    if tamper == "body":
        body = body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.SUCCESs")
    elif tamper == "signature":
        raw = bytearray(base64.b64decode(headers["Wechatpay-Signature"]))
        raw[10] ^= 1
        headers["Wechatpay-Signature"] = base64.b64encode(bytes(raw)).decode()
    elif tamper == "timestamp":  # still fresh, but not what was signed
        headers["Wechatpay-Timestamp"] = str(int(headers["Wechatpay-Timestamp"]) + 1)
    elif tamper == "nonce":
        headers["Wechatpay-Nonce"] += "x"
    elif tamper == "serial":
        headers["Wechatpay-Serial"] = "PUB_KEY_ID_0000000000000000000000000000"
    elif tamper == "base64":
        headers["Wechatpay-Signature"] = "not base64 at all!"
    elif tamper == "missing":
        del headers["Wechatpay-Nonce"]
    elif tamper == "scheme":
        headers["Wechatpay-Signature-Type"] = "WECHATPAY2-SM2-WITH-SM3"
    with pytest.raises(PaySignatureError):
        pay_v3.parse_notify(headers, body, make_config(), NOW)


@pytest.mark.parametrize("offset, accepted", [(-301, False), (-300, True), (0, True), (300, True), (301, False)])
def test_stale_and_future_timestamps_are_refused(offset, accepted):
    body = b'{"a":1}'
    headers = sign_headers(body, when=NOW + timedelta(seconds=offset))
    keys = pay_v3.platform_keys(make_config())
    if accepted:
        pay_v3.verify_signature(headers, body, keys, NOW)
    else:
        with pytest.raises(PaySignatureError):
            pay_v3.verify_signature(headers, body, keys, NOW)


# ---------------------------------------------------------------- notifies

def test_payment_notify_maps_to_a_transaction():
    body = notify_body("TRANSACTION.SUCCESS", TRANSACTION)
    notification = pay_v3.parse_notify(sign_headers(body), body, make_config(), NOW)
    tx = notification.transaction
    assert (notification.kind, notification.notify_id, notification.refund) == ("payment", "EV-2018022511223320873", None)
    assert (tx.out_trade_no, tx.transaction_id, tx.trade_state, tx.amount_total_fen, tx.payer_openid, tx.appid,
            tx.mchid) == ("T20240501001", "4200000001202405011", "SUCCESS", 1999, "oUser1", APPID, MCHID)
    assert tx.success_time == datetime(2024, 5, 1, 12, 0, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize("event, status", [("REFUND.SUCCESS", "SUCCESS"), ("REFUND.ABNORMAL", "ABNORMAL"),
                                           ("REFUND.CLOSED", "CLOSED")])
def test_refund_notifies_map_to_a_refund(event, status):
    body = notify_body(event, {**REFUND, "refund_status": status}, original_type="refund")
    notification = pay_v3.parse_notify(sign_headers(body), body, make_config(), NOW)
    refund = notification.refund
    assert (notification.kind, notification.transaction) == ("refund", None)
    assert (refund.out_refund_no, refund.refund_id, refund.out_trade_no, refund.refund_fen, refund.total_fen,
            refund.status) == ("R1", "50000000382019052709732678859", "T20240501001", 500, 1999, status)


def test_a_resource_under_another_apiv3_key_is_refused():
    body = notify_body("TRANSACTION.SUCCESS", TRANSACTION, key="0" * 32)
    with pytest.raises(PaySignatureError):
        pay_v3.parse_notify(sign_headers(body), body, make_config(), NOW)


def test_a_genuine_notify_of_another_kind_is_unsupported_not_forged():
    body = notify_body("PAYSCORE.USER_OPEN_SERVICE", {"x": 1}, original_type="payscore")
    with pytest.raises(PayNotifyUnsupported):
        pay_v3.parse_notify(sign_headers(body), body, make_config(), NOW)
    body = notify_body("TRANSACTION.SUCCESS", {"trade_state": "SUCCESS"})  # no out_trade_no
    with pytest.raises(PayNotifyUnsupported):
        pay_v3.parse_notify(sign_headers(body), body, make_config(), NOW)


# ---------------------------------------------------------------- pay parameters and configuration

def test_jsapi_pay_params_are_strings_signed_with_the_merchant_key():
    params = pay_v3.jsapi_pay_params(APPID, "wx201410272009395522657a690389285100",
                                     pem("wechatpay-java-merchant-private-key.pem"), timestamp=1414561699, nonce="abc")
    assert {k: v for k, v in params.items() if k != "paySign"} == {
        "timeStamp": "1414561699", "nonceStr": "abc", "package": "prepay_id=wx201410272009395522657a690389285100",
        "signType": "RSA"}
    assert all(isinstance(value, str) for value in params.values())
    merchant = x509.load_pem_x509_certificate(pem("wechatpay-java-merchant-cert.pem").encode()).public_key()
    message = f"{APPID}\n1414561699\nabc\nprepay_id=wx201410272009395522657a690389285100\n".encode()
    merchant.verify(base64.b64decode(params["paySign"]), message, padding.PKCS1v15(), hashes.SHA256())


def test_config_needs_platform_keys_and_pairs_the_public_key_with_its_id():
    with pytest.raises(ValueError):
        make_config(platform_certs_pem=[], platform_public_key_pem=None, platform_public_key_id=None)
    with pytest.raises(ValueError):
        make_config(platform_public_key_id=None)
    assert "PRIVATE" not in repr(make_config()) and APIV3_KEY not in repr(make_config())


def test_load_pem_or_path_reads_text_files_and_lists(tmp_path):
    go, java = pem("wechatpay-go-platform-cert.pem"), pem("wechatpay-java-platform-cert.pem")
    (tmp_path / "go.pem").write_text(go)
    (tmp_path / "java.pem").write_text(java)
    one_line = go.strip().replace("\n", "\\n")  # as pasted into a one-line env variable
    assert pay_v3.load_pem_or_path(one_line).strip() == go.strip()
    assert pay_v3.load_pem_or_path(go).strip() == go.strip()
    for listing in (f"{tmp_path / 'go.pem'},{tmp_path / 'java.pem'}", f"{tmp_path / 'go.pem'}\n{tmp_path / 'java.pem'}\n"):
        config = make_config(platform_certs_pem=[pay_v3.load_pem_or_path(listing)], platform_public_key_pem=None,
                             platform_public_key_id=None)
        assert set(pay_v3.platform_keys(config)) == {GO_SERIAL, PLATFORM_SERIAL}
    with pytest.raises(ValueError):
        pay_v3.load_pem_or_path(str(tmp_path / "absent.pem"))


# ---------------------------------------------------------------- client round trip

class FakeWeChatPay(BaseHTTPRequestHandler):
    """Checks our Authorization with the merchant certificate; answers from `routes`, signed."""
    routes: dict = {}
    seen: list = []
    merchant_key = x509.load_pem_x509_certificate(pem("wechatpay-java-merchant-cert.pem").encode()).public_key()

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self._answer()

    def _authorized(self, body: bytes) -> bool:
        match = re.fullmatch(r"WECHATPAY2-SHA256-RSA2048 (.+)", self.headers.get("Authorization", ""))
        fields = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) if match else {}
        if fields.get("mchid") != MCHID or fields.get("serial_no") != MERCHANT_SERIAL:
            return False
        message = f"{self.command}\n{self.path}\n{fields['timestamp']}\n{fields['nonce_str']}\n".encode() + body + b"\n"
        try:
            self.merchant_key.verify(base64.b64decode(fields["signature"]), message, padding.PKCS1v15(), hashes.SHA256())
        except Exception:  # noqa: BLE001  (any failure is "not authorized")
            return False
        return True

    def _answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        authorized = self._authorized(body)
        self.seen.append({"method": self.command, "path": self.path, "body": body, "authorized": authorized})
        status, answer, mode = self.routes.get((self.command, self.path), (404, {"code": "NOT_FOUND"}, "sign"))
        if not authorized:
            status, answer, mode = 401, {"code": "SIGN_ERROR", "message": "bad Authorization"}, "sign"
        data = b"" if answer is None else json.dumps(answer, ensure_ascii=False).encode()
        self.send_response(status)
        headers = sign_headers(data, when=datetime.now(timezone.utc)) if mode != "unsigned" else {}
        if mode == "bad":
            headers["Wechatpay-Signature"] = sign_headers(data + b" ", when=datetime.now(timezone.utc))[
                "Wechatpay-Signature"]
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def wechat_pay():
    FakeWeChatPay.routes, FakeWeChatPay.seen = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeWeChatPay)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    client = pay_v3.PayV3Client(make_config(f"http://127.0.0.1:{server.server_address[1]}"), timeout=3.0)
    yield client, FakeWeChatPay
    server.shutdown()
    server.server_close()


QUERY_PATH = f"/v3/pay/transactions/out-trade-no/T20240501001?mchid={MCHID}"


def test_client_round_trip(wechat_pay):
    client, fake = wechat_pay
    fake.routes.update({
        ("POST", "/v3/pay/transactions/jsapi"): (200, {"prepay_id": "wx2014102720093955"}, "sign"),
        ("GET", QUERY_PATH): (200, TRANSACTION, "sign"),
        ("POST", "/v3/pay/transactions/out-trade-no/T20240501001/close"): (204, None, "sign"),
        ("POST", "/v3/refund/domestic/refunds"): (200, {**REFUND, "status": "PROCESSING", "success_time": None}, "sign"),
        ("GET", "/v3/refund/domestic/refunds/R1"): (200, {**REFUND, "status": "SUCCESS"}, "sign"),
    })
    expire = datetime(2024, 5, 1, 12, 15, tzinfo=timezone.utc)
    assert client.prepay_jsapi("T20240501001", "测试商品", 1999, "oUser1", expire, "https://x/notify") == "wx2014102720093955"
    assert client.query("T20240501001").amount_total_fen == 1999
    client.close("T20240501001")
    assert client.refund("T20240501001", "R1", 500, 1999, "退货", "https://x/refund").status == "PROCESSING"
    assert client.query_refund("R1").success_time == datetime(2024, 5, 2, 2, 0, tzinfo=timezone.utc)
    assert all(request["authorized"] for request in fake.seen) and len(fake.seen) == 5
    prepay = json.loads(fake.seen[0]["body"])
    assert prepay["time_expire"] == "2024-05-01T20:15:00+08:00"
    assert (prepay["amount"], prepay["payer"], prepay["mchid"], prepay["appid"]) == (
        {"total": 1999, "currency": "CNY"}, {"openid": "oUser1"}, MCHID, APPID)
    assert json.loads(fake.seen[2]["body"]) == {"mchid": MCHID}


@pytest.mark.parametrize("mode", ["bad", "unsigned"])
def test_a_2xx_answer_without_a_good_signature_is_refused(wechat_pay, mode):
    client, fake = wechat_pay
    fake.routes[("GET", QUERY_PATH)] = (200, TRANSACTION, mode)
    with pytest.raises(PaySignatureError):
        client.query("T20240501001")


def test_error_answers(wechat_pay):
    client, fake = wechat_pay
    fake.routes[("GET", QUERY_PATH)] = (404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}, "sign")
    with pytest.raises(PayApiError) as error:
        client.query("T20240501001")
    assert (error.value.code, error.value.http_status) == ("ORDER_NOT_EXIST", 404)
    fake.routes[("GET", QUERY_PATH)] = (404, {"code": "ORDER_NOT_EXIST", "message": "forged"}, "bad")
    with pytest.raises(PaySignatureError):  # a forged error code never drives a decision
        client.query("T20240501001")
    fake.routes[("GET", QUERY_PATH)] = (400, {"code": "PARAM_ERROR", "message": "x"}, "unsigned")
    with pytest.raises(PayApiError):
        client.query("T20240501001")
    fake.routes[("GET", QUERY_PATH)] = (503, {"code": "SYSTEM_ERROR"}, "sign")
    with pytest.raises(PayUnavailable):
        client.query("T20240501001")


def test_wechat_refuses_a_request_signed_with_another_key(wechat_pay):
    client, fake = wechat_pay
    stranger = pay_v3.PayV3Client(make_config(client._config.api_base, merchant_private_key_pem=GO_KEY))
    with pytest.raises(PayApiError) as error:
        stranger.query("T20240501001")
    assert error.value.code == "SIGN_ERROR" and fake.seen[-1]["authorized"] is False


def test_an_unreachable_wechat_pay_is_unavailable():
    client = pay_v3.PayV3Client(make_config("http://127.0.0.1:9"), timeout=1.0)
    with pytest.raises(PayUnavailable):
        client.query("T20240501001")
