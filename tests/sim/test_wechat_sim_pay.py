"""WeChat Pay v3/v2 on the local simulator, over real HTTP.

The merchant side here is a mini-client written in this file from WeChat's
documentation (never chalicelib): it signs v3 requests with a generated
merchant key, verifies the simulator's signatures with the platform keys,
decrypts notifies with the APIv3 key, and signs/verifies v2 XML.  Notifies
land on a tiny stdlib HTTP receiver on 127.0.0.1 started by the tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import secrets
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from local.wechat_sim import generate_merchant_keys, start_simulator
from local.wechat_sim import pay_crypto

REPO_ROOT = Path(__file__).resolve().parents[2]
VECTORS = REPO_ROOT.parent / "shared" / "wechat-vectors"
APPID, SECRET, MCHID = "wx_pay_app", "pay_app_secret", "1230000109"
APIV3_KEY = "testAPIv3Key0123456789abcdefghij"        # 32 bytes
API_KEY = "testAPIv2Key0123456789abcdefghij"
OPENID = "oPayer000000000000000000000a"
V3_PATH, V2_PATH, V2_REFUND_PATH = ("/v1/payments/wechat/v3/notify", "/v1/payments/wechat/notify",
                                    "/v1/payments/wechat/refund-notify")
V2_OK = b"<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"


# -- a notify receiver (stands in for our API) ---------------------------------------------

class Receiver:
    """Records every POST; answers from a per-path script, then with success."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.requests: list[dict] = []
        self.scripts: dict[str, deque] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.cond:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                              "body": body, "at": time.monotonic()})
                    script = receiver.scripts.get(self.path)
                    status, payload = script.popleft() if script else (
                        (204, b"") if self.path == V3_PATH else (200, V2_OK))
                    receiver.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def script(self, path: str, *responses: tuple[int, bytes]) -> None:
        with self.cond:
            self.scripts[path] = deque(responses)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.requests) >= count, timeout), \
                f"expected {count} notifies, got {len(self.requests)}"
            return list(self.requests)

    def reset(self) -> None:
        with self.cond:
            self.requests.clear()
            self.scripts.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# -- the merchant's mini-client -------------------------------------------------------------

def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def rsa_verify(public_key, message: str, signature: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature), message.encode(), padding.PKCS1v15(), hashes.SHA256())
        return True
    except InvalidSignature:
        return False


def v2_sign(params: dict, key: str, sign_type: str) -> str:
    text = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign" and v != "")
    text += f"&key={key}"
    if sign_type == "HMAC-SHA256":
        return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest().upper()
    return hashlib.md5(text.encode()).hexdigest().upper()


def xml_of(params: dict) -> bytes:
    return ("<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in params.items()) + "</xml>").encode()


def parse_xml(body: bytes) -> dict:
    return {child.tag: child.text or "" for child in ET.fromstring(body)}


class Merchant:
    def __init__(self, base: str, key, serial: str) -> None:
        split = urlsplit(base)
        self.host, self.port = split.hostname, split.port
        self.key, self.serial = key, serial
        self.platform: dict[str, object] = {}

    def raw(self, method: str, path: str, body: bytes = b"", headers: dict | None = None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body or None, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.headers), resp.read()
        finally:
            conn.close()

    def authorization(self, method: str, path: str, body: str, *, timestamp: int | None = None,
                      key=None, serial: str | None = None, mchid: str = MCHID) -> str:
        stamp, nonce = str(timestamp or int(time.time())), secrets.token_hex(16)
        message = f"{method}\n{path}\n{stamp}\n{nonce}\n{body}\n"
        signature = b64((key or self.key).sign(message.encode(), padding.PKCS1v15(), hashes.SHA256()))
        return (f'WECHATPAY2-SHA256-RSA2048 mchid="{mchid}",nonce_str="{nonce}",'
                f'signature="{signature}",timestamp="{stamp}",serial_no="{serial or self.serial}"')

    def v3(self, method: str, path: str, body: dict | None = None, **auth):
        text = "" if body is None else json.dumps(body, ensure_ascii=False)
        headers = {"Authorization": self.authorization(method, path, text, **auth),
                   "Accept": "application/json", "Content-Type": "application/json"}
        status, resp_headers, payload = self.raw(method, path, text.encode(), headers)
        self.check_signature(resp_headers, payload)
        return status, (json.loads(payload) if payload else None)

    def check_signature(self, headers: dict, body: bytes) -> None:
        key = self.platform[headers["Wechatpay-Serial"]]
        message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n{body.decode()}\n"
        assert rsa_verify(key, message, headers["Wechatpay-Signature"]), "bad platform signature"

    def v2(self, path: str, params: dict, sign_type: str = "MD5", key: str = API_KEY) -> dict:
        params = {"appid": APPID, "mch_id": MCHID, "nonce_str": secrets.token_hex(16), **params}
        if sign_type != "MD5":
            params["sign_type"] = sign_type
        params["sign"] = v2_sign(params, key, sign_type)
        status, _, payload = self.raw("POST", path, xml_of(params), {"Content-Type": "text/xml"})
        assert status == 200
        answer = parse_xml(payload)
        if answer["return_code"] == "SUCCESS":
            assert answer["sign"] == v2_sign(answer, API_KEY, sign_type), "bad v2 answer sign"
        return answer


# -- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def merchant_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("merchant")
    serial = generate_merchant_keys(folder)
    return folder, serial


@pytest.fixture(scope="module")
def receiver():
    rcv = Receiver()
    yield rcv
    rcv.stop()


@pytest.fixture(scope="module")
def sim(merchant_dir):
    folder, serial = merchant_dir
    simulator = start_simulator(apps={APPID: SECRET}, mchid=MCHID, merchant_cert=folder / "apiclient_cert.pem",
                                apiv3_key=APIV3_KEY, api_key=API_KEY, refund_delay_ms=None,
                                notify_retry_delays_ms=(30, 30, 30, 30), notify_timeout_s=3)
    yield simulator
    simulator.stop()


@pytest.fixture
def mch(sim, merchant_dir, receiver):
    sim.state.reset()
    sim.state.pay.set_sign_with("cert")
    sim.state.pay.refund_delay_ms = None
    receiver.reset()
    folder, serial = merchant_dir
    key = serialization.load_pem_private_key((folder / "apiclient_key.pem").read_bytes(), None)
    client = Merchant(sim.base_url, key, serial)
    info = dev(client, "GET", "/__sim/pay/platform")[1]
    cert = x509.load_pem_x509_certificate(info["platform_cert_pem"].encode())
    client.platform = {info["platform_cert_serial"]: cert.public_key(),
                       info["platform_public_key_id"]: serialization.load_pem_public_key(
                           info["platform_public_key_pem"].encode())}
    client.info = info
    return client


def dev(client: Merchant, method: str, path: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else b""
    status, _, payload = client.raw(method, path, data, {"Content-Type": "application/json"})
    return status, json.loads(payload)


def order(receiver: Receiver, no: str = "SO202400000001", total: int = 1999, **extra) -> dict:
    body = {"appid": APPID, "mchid": MCHID, "description": "测试商品", "out_trade_no": no,
            "notify_url": receiver.base + V3_PATH, "amount": {"total": total, "currency": "CNY"},
            "payer": {"openid": OPENID}}
    body.update(extra)
    return body


def open_v3_notify(client: Merchant, request: dict) -> tuple[dict, dict]:
    """Verify a v3 notify as our server must, then decrypt its resource."""
    headers, body = request["headers"], request["body"]
    client.check_signature(headers, body)
    assert abs(time.time() - int(headers["Wechatpay-Timestamp"])) < 300
    envelope = json.loads(body)
    resource = envelope["resource"]
    assert resource["algorithm"] == "AEAD_AES_256_GCM"
    plain = AESGCM(APIV3_KEY.encode()).decrypt(resource["nonce"].encode(), base64.b64decode(
        resource["ciphertext"]), resource["associated_data"].encode())
    return envelope, json.loads(plain)


def place_and_pay(client, receiver, no="SO202400000001", total=1999, **knobs) -> dict:
    assert client.v3("POST", "/v3/pay/transactions/jsapi", order(receiver, no, total))[0] == 200
    status, out = dev(client, "POST", "/__sim/pay/pay", {"out_trade_no": no, **knobs})
    assert status == 200, out
    return out


# -- keys and signatures ----------------------------------------------------------------------

def test_platform_endpoint_exposes_cert_and_public_key(mch, merchant_dir):
    info = mch.info
    cert = x509.load_pem_x509_certificate(info["platform_cert_pem"].encode())
    assert format(cert.serial_number, "X") == info["platform_cert_serial"]
    assert info["platform_public_key_id"].startswith("PUB_KEY_ID_")
    assert info["mchid"] == MCHID and info["merchant_serial"] == merchant_dir[1]
    assert "PRIVATE" not in json.dumps(info)


@pytest.mark.parametrize("sign_with", ["cert", "pubkey"])
def test_v3_jsapi_answer_is_signed_with_the_chosen_platform_key(mch, receiver, sign_with):
    assert dev(mch, "POST", "/__sim/pay/config", {"sign_with": sign_with})[0] == 200
    text = json.dumps(order(receiver))
    headers = {"Authorization": mch.authorization("POST", "/v3/pay/transactions/jsapi", text),
               "Content-Type": "application/json"}
    status, resp_headers, payload = mch.raw("POST", "/v3/pay/transactions/jsapi", text.encode(), headers)
    assert status == 200 and json.loads(payload)["prepay_id"].startswith("wx")
    expected = mch.info["platform_cert_serial" if sign_with == "cert" else "platform_public_key_id"]
    assert resp_headers["Wechatpay-Serial"] == expected
    mch.check_signature(resp_headers, payload)
    other = [k for s, k in mch.platform.items() if s != expected][0]
    message = f"{resp_headers['Wechatpay-Timestamp']}\n{resp_headers['Wechatpay-Nonce']}\n{payload.decode()}\n"
    assert not rsa_verify(other, message, resp_headers["Wechatpay-Signature"])


@pytest.mark.parametrize("tamper", ["body", "other_key", "stale", "serial", "mchid", "no_header"])
def test_v3_bad_request_signature_is_401_sign_error(mch, receiver, tamper):
    body = order(receiver)
    text = json.dumps(body)
    auth = {"other_key": {"key": other_rsa_key()},
            "stale": {"timestamp": int(time.time()) - 301},
            "serial": {"serial": "0" * 40}, "mchid": {"mchid": "1999999999"}}.get(tamper, {})
    headers = {"Content-Type": "application/json"}
    if tamper != "no_header":
        headers["Authorization"] = mch.authorization("POST", "/v3/pay/transactions/jsapi", text, **auth)
    sent = text.replace("1999", "1") if tamper == "body" else text
    status, resp_headers, payload = mch.raw("POST", "/v3/pay/transactions/jsapi", sent.encode(), headers)
    assert status == 401 and json.loads(payload)["code"] == "SIGN_ERROR"
    mch.check_signature(resp_headers, payload)


def other_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_v3_query_string_is_part_of_the_signed_url(mch, receiver):
    mch.v3("POST", "/v3/pay/transactions/jsapi", order(receiver))
    path = f"/v3/pay/transactions/out-trade-no/SO202400000001?mchid={MCHID}"
    auth = mch.authorization("GET", "/v3/pay/transactions/out-trade-no/SO202400000001", "")
    status, _, payload = mch.raw("GET", path, b"", {"Authorization": auth})
    assert status == 401 and json.loads(payload)["code"] == "SIGN_ERROR"
    assert mch.v3("GET", path)[0] == 200


# -- JSAPI下单 / 查询 / 关单 ---------------------------------------------------------------------------

def test_v3_same_order_gets_same_prepay_id_and_a_changed_one_is_refused(mch, receiver):
    first = mch.v3("POST", "/v3/pay/transactions/jsapi", order(receiver))
    again = mch.v3("POST", "/v3/pay/transactions/jsapi", order(receiver))
    assert first == again and first[0] == 200
    status, body = mch.v3("POST", "/v3/pay/transactions/jsapi", order(receiver, total=2000))
    assert status == 400 and body["code"] == "INVALID_REQUEST" and "重复" in body["message"]


@pytest.mark.parametrize("change, code", [
    ({"out_trade_no": "SO1"}, "PARAM_ERROR"),
    ({"out_trade_no": "SO 2024 0001"}, "PARAM_ERROR"),
    ({"amount": {"total": 0}}, "PARAM_ERROR"),
    ({"amount": {"total": 19.99}}, "PARAM_ERROR"),
    ({"payer": {}}, "PARAM_ERROR"),
    ({"description": ""}, "PARAM_ERROR"),
    ({"notify_url": "http://127.0.0.1/notify?x=1"}, "PARAM_ERROR"),
    ({"time_expire": "2024-01-01 10:00:00"}, "PARAM_ERROR"),
    ({"time_expire": "2001-01-01T10:00:00+08:00"}, "INVALID_REQUEST"),
    ({"appid": "wx_unknown"}, "APPID_MCHID_NOT_MATCH"),
    ({"mchid": "1999999999"}, "APPID_MCHID_NOT_MATCH"),
])
def test_v3_jsapi_validates_the_order(mch, receiver, change, code):
    status, body = mch.v3("POST", "/v3/pay/transactions/jsapi", order(receiver, **change))
    assert status == 400 and body["code"] == code


def test_v3_pay_delivers_a_verifiable_encrypted_notify(mch, receiver):
    query = f"/v3/pay/transactions/out-trade-no/SO202400000001?mchid={MCHID}"
    mch.v3("POST", "/v3/pay/transactions/jsapi", order(receiver, attach="a=1"))
    status, before = mch.v3("GET", query)
    assert status == 200 and before["trade_state"] == "NOTPAY" and "transaction_id" not in before
    out = dev(mch, "POST", "/__sim/pay/pay", {"out_trade_no": "SO202400000001", "wait": True})[1]
    assert out["newly_paid"] is True and out["notifies"][0]["status"] == "delivered"
    [request] = receiver.wait_for(1)
    envelope, plain = open_v3_notify(mch, request)
    assert envelope["event_type"] == "TRANSACTION.SUCCESS"
    assert envelope["resource"]["associated_data"] == "transaction"
    assert envelope["resource"]["original_type"] == "transaction"
    assert plain["trade_state"] == "SUCCESS" and plain["out_trade_no"] == "SO202400000001"
    assert plain["amount"]["total"] == 1999 and plain["payer"]["openid"] == OPENID
    assert plain["transaction_id"].startswith("42000") and len(plain["transaction_id"]) == 28
    assert plain["mchid"] == MCHID and plain["appid"] == APPID and plain["attach"] == "a=1"
    status, after = mch.v3("GET", query)
    assert after["trade_state"] == "SUCCESS" and after["transaction_id"] == plain["transaction_id"]
    by_id = f"/v3/pay/transactions/id/{plain['transaction_id']}?mchid={MCHID}"
    assert mch.v3("GET", by_id)[1]["out_trade_no"] == "SO202400000001"
    attempts = dev(mch, "GET", "/__sim/pay/notifies")[1]["items"][0]["attempts"]
    assert [(a["status"], a["ok"]) for a in attempts] == [(204, True)]


def test_v3_query_unknown_order_is_404(mch):
    status, body = mch.v3("GET", f"/v3/pay/transactions/out-trade-no/SO_NOPE_0001?mchid={MCHID}")
    assert status == 404 and body["code"] == "ORDER_NOT_EXIST"


def test_v3_close_then_pay_is_refused_and_closing_paid_is_orderpaid(mch, receiver):
    mch.v3("POST", "/v3/pay/transactions/jsapi", order(receiver, no="SO_CLOSE_01"))
    close = "/v3/pay/transactions/out-trade-no/SO_CLOSE_01/close"
    assert mch.v3("POST", close, {"mchid": MCHID}) == (204, None)
    assert mch.v3("POST", close, {"mchid": MCHID}) == (204, None)  # closing again is fine
    state = mch.v3("GET", f"/v3/pay/transactions/out-trade-no/SO_CLOSE_01?mchid={MCHID}")[1]
    assert state["trade_state"] == "CLOSED"
    assert dev(mch, "POST", "/__sim/pay/pay", {"out_trade_no": "SO_CLOSE_01"})[0] == 409
    status, body = mch.v3("POST", "/v3/pay/transactions/jsapi", order(receiver, no="SO_CLOSE_01"))
    assert status == 400 and body["code"] == "ORDER_CLOSED"
    # A payment that beat the close: force pays it anyway, as a late payment.
    assert dev(mch, "POST", "/__sim/pay/pay", {"out_trade_no": "SO_CLOSE_01", "force": True})[0] == 200
    place_and_pay(mch, receiver, no="SO_PAID_001")
    status, body = mch.v3("POST", "/v3/pay/transactions/out-trade-no/SO_PAID_001/close", {"mchid": MCHID})
    assert status == 400 and body["code"] == "ORDERPAID"
    assert mch.v3("POST", "/v3/pay/transactions/out-trade-no/SO_NONE_001/close", {"mchid": MCHID})[0] == 404


# -- notify delivery knobs ----------------------------------------------------------------------

def test_notify_is_retried_until_our_server_answers_success(mch, receiver):
    receiver.script(V3_PATH, (500, b'{"code":"FAIL","message":"busy"}'), (400, b'{"code":"FAIL"}'), (200, b""))
    out = place_and_pay(mch, receiver, wait=True)
    job = out["notifies"][0]
    assert job["status"] == "delivered"
    assert [a["status"] for a in job["attempts"]] == [500, 400, 200]
    # Every attempt carried the same notify (the module's receiver may also hold a late retry of
    # an earlier test's notify on a loaded machine: only this job's requests are counted).
    sent = job["body"].encode("utf-8")
    assert sum(request["body"] == sent for request in receiver.wait_for(3)) == 3


def test_notify_gives_up_after_max_attempts(mch, receiver):
    receiver.script(V3_PATH, *[(500, b"")] * 5)
    out = place_and_pay(mch, receiver, wait=True, max_attempts=2)
    assert out["notifies"][0]["status"] == "failed" and len(out["notifies"][0]["attempts"]) == 2
    listed = dev(mch, "GET", "/__sim/pay/notifies?status=failed")[1]["items"]
    assert [n["id"] for n in listed] == [out["notifies"][0]["id"]]


@pytest.mark.parametrize("concurrent", [False, True])
def test_duplicate_notifies_are_identical(mch, receiver, concurrent):
    out = place_and_pay(mch, receiver, duplicate=3, concurrent=concurrent, wait=True)
    assert len(out["notifies"]) == 4 and all(n["status"] == "delivered" for n in out["notifies"])
    requests = receiver.wait_for(4)
    assert len({r["body"] for r in requests}) == 1
    if concurrent:  # all four copies fire together
        assert max(r["at"] for r in requests) - min(r["at"] for r in requests) < 0.5


def test_notify_delay_ms_postpones_delivery(mch, receiver):
    started = time.monotonic()
    place_and_pay(mch, receiver, delay_ms=300)
    [request] = receiver.wait_for(1)
    assert request["at"] - started >= 0.29


@pytest.mark.parametrize("corrupt", ["signature", "ciphertext", "timestamp", "serial", "amount", "mchid"])
def test_corrupt_notifies_fail_the_checks_our_server_must_make(mch, receiver, corrupt):
    place_and_pay(mch, receiver, corrupt=corrupt, max_attempts=1, wait=True)
    [request] = receiver.wait_for(1)
    headers, body = request["headers"], request["body"]
    message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n{body.decode()}\n"
    key = mch.platform.get(headers["Wechatpay-Serial"])
    if corrupt == "serial":
        assert key is None
        return
    signature_ok = rsa_verify(key, message, headers["Wechatpay-Signature"])
    assert signature_ok is (corrupt != "signature")
    if corrupt == "timestamp":
        assert time.time() - int(headers["Wechatpay-Timestamp"]) > 300
    if corrupt == "ciphertext":
        with pytest.raises(InvalidTag):
            open_v3_notify(mch, request)
    if corrupt in ("amount", "mchid"):
        _, plain = open_v3_notify(mch, request)  # correctly signed and encrypted ...
        assert (plain["amount"]["total"], plain["mchid"]) != (1999, MCHID)  # ... but wrong


def test_corrupt_kind_must_fit_the_notify(mch, receiver):
    mch.v3("POST", "/v3/pay/transactions/jsapi", order(receiver))
    status, body = dev(mch, "POST", "/__sim/pay/pay", {"out_trade_no": "SO202400000001", "corrupt": "bogus"})
    assert status == 400
    state = mch.v3("GET", f"/v3/pay/transactions/out-trade-no/SO202400000001?mchid={MCHID}")[1]
    assert state["trade_state"] == "NOTPAY"  # a refused knob changes nothing


def test_held_notifies_are_released_in_the_chosen_order(mch, receiver):
    first = place_and_pay(mch, receiver, no="SO_HOLD_0001", hold=True)
    second = place_and_pay(mch, receiver, no="SO_HOLD_0002", hold=True)
    assert first["notifies"][0]["status"] == "held"
    time.sleep(0.1)
    assert receiver.requests == []
    ids = [second["notifies"][0]["id"], first["notifies"][0]["id"]]
    status, out = dev(mch, "POST", "/__sim/pay/release", {"ids": ids})
    assert status == 200 and [j["status"] for j in out["released"]] == ["delivered", "delivered"]
    order_seen = [open_v3_notify(mch, r)[1]["out_trade_no"] for r in receiver.wait_for(2)]
    assert order_seen == ["SO_HOLD_0002", "SO_HOLD_0001"]
    assert dev(mch, "POST", "/__sim/pay/release", {"ids": ids})[0] == 400  # no longer held


def test_refund_notify_can_overtake_the_pay_notify(mch, receiver):
    paid = place_and_pay(mch, receiver, no="SO_RACE_0001", hold=True)
    refund = {"out_trade_no": "SO_RACE_0001", "out_refund_no": "RF_RACE_0001",
              "notify_url": receiver.base + V3_PATH, "amount": {"refund": 1999, "total": 1999, "currency": "CNY"}}
    assert mch.v3("POST", "/v3/refund/domestic/refunds", refund)[0] == 200
    done = dev(mch, "POST", "/__sim/pay/refund-notify", {"out_refund_no": "RF_RACE_0001", "hold": True})[1]
    dev(mch, "POST", "/__sim/pay/release", {"order": "lifo"})
    events = [json.loads(r["body"])["event_type"] for r in receiver.wait_for(2)]
    assert events == ["REFUND.SUCCESS", "TRANSACTION.SUCCESS"]
    assert done["notifies"][0]["id"] != paid["notifies"][0]["id"]


def test_notifies_only_go_to_loopback(mch, receiver):
    mch.v3("POST", "/v3/pay/transactions/jsapi", order(receiver, notify_url="https://example.com/notify"))
    out = dev(mch, "POST", "/__sim/pay/pay", {"out_trade_no": "SO202400000001", "max_attempts": 1,
                                              "wait": True})[1]
    assert "loopback" in out["notifies"][0]["attempts"][0]["error"]


# -- refunds -----------------------------------------------------------------------------------

def refund_body(receiver, no="RF_0001", refund=500, total=1999, trade="SO202400000001") -> dict:
    return {"out_trade_no": trade, "out_refund_no": no, "reason": "不想要了",
            "notify_url": receiver.base + V3_PATH,
            "amount": {"refund": refund, "total": total, "currency": "CNY"}}


def test_v3_refund_processing_then_success_with_notify(mch, receiver):
    place_and_pay(mch, receiver, wait=True)
    receiver.reset()
    status, created = mch.v3("POST", "/v3/refund/domestic/refunds", refund_body(receiver))
    assert status == 200 and created["status"] == "PROCESSING" and created["amount"]["refund"] == 500
    assert mch.v3("POST", "/v3/refund/domestic/refunds", refund_body(receiver)) [1]["refund_id"] == created["refund_id"]
    status, body = mch.v3("POST", "/v3/refund/domestic/refunds", refund_body(receiver, refund=600))
    assert status == 400 and body["code"] == "INVALID_REQUEST"
    status, body = mch.v3("POST", "/v3/refund/domestic/refunds", refund_body(receiver, "RF_0002", 1500))
    assert status == 400 and "可退" in body["message"]  # 500 + 1500 > 1999
    assert mch.v3("POST", "/v3/refund/domestic/refunds", refund_body(receiver, "RF_0003", 10, 2000))[0] == 400
    out = dev(mch, "POST", "/__sim/pay/refund-notify", {"out_refund_no": "RF_0001", "wait": True})[1]
    assert out["refund_status"] == "SUCCESS" and out["notifies"][0]["status"] == "delivered"
    envelope, plain = open_v3_notify(mch, receiver.wait_for(1)[0])
    assert envelope["event_type"] == "REFUND.SUCCESS"
    assert envelope["resource"]["associated_data"] == "refund"
    assert plain["refund_status"] == "SUCCESS" and plain["amount"]["refund"] == 500
    assert plain["refund_id"] == created["refund_id"] and plain["out_refund_no"] == "RF_0001"
    queried = mch.v3("GET", "/v3/refund/domestic/refunds/RF_0001")[1]
    assert queried["status"] == "SUCCESS" and "success_time" in queried
    trade = mch.v3("GET", f"/v3/pay/transactions/out-trade-no/SO202400000001?mchid={MCHID}")[1]
    assert trade["trade_state"] == "REFUND"
    assert mch.v3("GET", "/v3/refund/domestic/refunds/RF_NONE")[0] == 404
    again = dev(mch, "POST", "/__sim/pay/pay", {"out_trade_no": "SO202400000001", "wait": True})[1]
    assert again["newly_paid"] is False  # paying again re-sends the same payment notify
    envelope, plain = open_v3_notify(mch, receiver.wait_for(2)[1])
    assert envelope["event_type"] == "TRANSACTION.SUCCESS" and plain["trade_state"] == "SUCCESS"
    assert plain["transaction_id"] == queried["transaction_id"]


def test_a_closed_refund_gives_the_amount_back(mch, receiver):
    place_and_pay(mch, receiver, wait=True)
    mch.v3("POST", "/v3/refund/domestic/refunds", refund_body(receiver, refund=1999))
    out = dev(mch, "POST", "/__sim/pay/refund-notify", {"out_refund_no": "RF_0001", "status": "CLOSED",
                                                        "wait": True})[1]
    assert out["refund_status"] == "CLOSED"
    assert json.loads(receiver.wait_for(2)[1]["body"])["event_type"] == "REFUND.CLOSED"
    assert dev(mch, "POST", "/__sim/pay/refund-notify", {"out_refund_no": "RF_0001"})[0] == 409
    status, body = mch.v3("POST", "/v3/refund/domestic/refunds", refund_body(receiver, "RF_0002", 1999))
    assert status == 200 and body["status"] == "PROCESSING"


def test_refund_completes_by_itself_after_refund_delay(sim, mch, receiver):
    sim.state.pay.refund_delay_ms = 50
    place_and_pay(mch, receiver, wait=True)
    mch.v3("POST", "/v3/refund/domestic/refunds", refund_body(receiver, refund=1999))
    _, plain = open_v3_notify(mch, receiver.wait_for(2)[1])
    assert plain["refund_status"] == "SUCCESS"
    status, body = mch.v3("POST", "/v3/refund/domestic/refunds", refund_body(receiver, "RF_0009", 1))
    assert status == 400 and body["message"] == "订单已全额退款"


def test_refund_of_unpaid_or_unknown_order_is_refused(mch, receiver):
    mch.v3("POST", "/v3/pay/transactions/jsapi", order(receiver))
    assert mch.v3("POST", "/v3/refund/domestic/refunds", refund_body(receiver))[0] == 400
    status, body = mch.v3("POST", "/v3/refund/domestic/refunds", refund_body(receiver, trade="SO_NONE_0001"))
    assert status == 404 and body["code"] == "RESOURCE_NOT_EXISTS"


# -- APIv2 (XML) -----------------------------------------------------------------------------------

def unified(no: str, total: int = 888, receiver: Receiver | None = None) -> dict:
    return {"body": "测试商品", "out_trade_no": no, "total_fee": str(total), "spbill_create_ip": "127.0.0.1",
            "notify_url": (receiver.base if receiver else "http://127.0.0.1:9") + V2_PATH,
            "trade_type": "JSAPI", "openid": OPENID}


@pytest.mark.parametrize("sign_type", ["MD5", "HMAC-SHA256"])
def test_v2_order_query_pay_and_signed_notify(mch, receiver, sign_type):
    answer = mch.v2("/pay/unifiedorder", unified("V2ORDER0001", receiver=receiver), sign_type)
    assert answer["result_code"] == "SUCCESS" and answer["prepay_id"].startswith("wx")
    assert mch.v2("/pay/unifiedorder", unified("V2ORDER0001", receiver=receiver), sign_type)["prepay_id"] \
        == answer["prepay_id"]
    repeat = mch.v2("/pay/unifiedorder", unified("V2ORDER0001", 999, receiver), sign_type)
    assert (repeat["result_code"], repeat["err_code"]) == ("FAIL", "INVALID_REQUEST")
    query = mch.v2("/pay/orderquery", {"out_trade_no": "V2ORDER0001"}, sign_type)
    assert query["trade_state"] == "NOTPAY"
    out = dev(mch, "POST", "/__sim/pay/pay", {"out_trade_no": "V2ORDER0001", "wait": True})[1]
    assert out["notifies"][0]["status"] == "delivered"
    notify = parse_xml(receiver.wait_for(1)[0]["body"])
    assert notify["sign"] == v2_sign(notify, API_KEY, sign_type)
    assert (notify["return_code"], notify["result_code"], notify["total_fee"]) == ("SUCCESS", "SUCCESS", "888")
    assert notify["appid"] == APPID and notify["mch_id"] == MCHID and notify["openid"] == OPENID
    assert notify["transaction_id"].startswith("42000") and len(notify["time_end"]) == 14
    query = mch.v2("/pay/orderquery", {"transaction_id": notify["transaction_id"]}, sign_type)
    assert (query["trade_state"], query["total_fee"]) == ("SUCCESS", "888")
    closed = mch.v2("/pay/closeorder", {"out_trade_no": "V2ORDER0001"}, sign_type)
    assert closed["err_code"] == "ORDERPAID"


def test_v2_notify_retries_until_return_code_success(mch, receiver):
    fail = b"<xml><return_code><![CDATA[FAIL]]></return_code><return_msg>no</return_msg></xml>"
    receiver.script(V2_PATH, (200, fail), (200, b"not xml"))
    mch.v2("/pay/unifiedorder", unified("V2RETRY0001", receiver=receiver))
    out = dev(mch, "POST", "/__sim/pay/pay", {"out_trade_no": "V2RETRY0001", "wait": True})[1]
    assert [a["ok"] for a in out["notifies"][0]["attempts"]] == [False, False, True]


@pytest.mark.parametrize("corrupt", ["signature", "amount"])
def test_v2_corrupt_pay_notify(mch, receiver, corrupt):
    mch.v2("/pay/unifiedorder", unified("V2BAD00001", receiver=receiver))
    dev(mch, "POST", "/__sim/pay/pay", {"out_trade_no": "V2BAD00001", "corrupt": corrupt, "max_attempts": 1})
    notify = parse_xml(receiver.wait_for(1)[0]["body"])
    assert (notify["sign"] == v2_sign(notify, API_KEY, "MD5")) is (corrupt == "amount")
    if corrupt == "amount":
        assert notify["total_fee"] == "889"


def test_v2_bad_sign_and_unknown_merchant_are_return_code_fail(mch):
    answer = mch.v2("/pay/unifiedorder", unified("V2SIGN0001"), key="not-the-api-key")
    assert (answer["return_code"], answer["return_msg"]) == ("FAIL", "签名错误")
    params = {"appid": APPID, "mch_id": "1999999999", "nonce_str": "abc", "out_trade_no": "V2SIGN0001"}
    params["sign"] = v2_sign(params, API_KEY, "MD5")
    _, _, payload = mch.raw("POST", "/pay/orderquery", xml_of(params))
    assert parse_xml(payload)["return_code"] == "FAIL"


def test_v2_lower_case_sign_is_accepted(mch):
    params = {"appid": APPID, "mch_id": MCHID, "nonce_str": "abc123", **unified("V2LOWER001")}
    params["sign"] = v2_sign(params, API_KEY, "MD5").lower()
    _, _, payload = mch.raw("POST", "/pay/unifiedorder", xml_of(params))
    assert parse_xml(payload)["result_code"] == "SUCCESS"


def test_v2_refuses_doctype_bodies(mch):
    xxe = (VECTORS / "wechatpay-php-xxe-injection.xml").read_bytes() if VECTORS.exists() else (
        b'<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<xml><appid>&xxe;</appid></xml>")
    for body in (xxe, b'<!DOCTYPE xml><xml><appid>x</appid></xml>'):
        status, _, payload = mch.raw("POST", "/pay/unifiedorder", body)
        answer = parse_xml(payload)
        assert status == 200 and answer["return_code"] == "FAIL" and "XML" in answer["return_msg"]


def test_v2_close_and_refund_with_encrypted_refund_notify(mch, receiver):
    mch.v2("/pay/unifiedorder", unified("V2CLOSE001", receiver=receiver))
    assert mch.v2("/pay/closeorder", {"out_trade_no": "V2CLOSE001"})["result_code"] == "SUCCESS"
    assert mch.v2("/pay/closeorder", {"out_trade_no": "V2CLOSE001"})["err_code"] == "ORDERCLOSED"
    assert mch.v2("/pay/orderquery", {"out_trade_no": "V2NONE0001"})["err_code"] == "ORDERNOTEXIST"
    mch.v2("/pay/unifiedorder", unified("V2REFUND01", receiver=receiver), "HMAC-SHA256")
    dev(mch, "POST", "/__sim/pay/pay", {"out_trade_no": "V2REFUND01", "wait": True})
    refund = {"out_trade_no": "V2REFUND01", "out_refund_no": "V2RF000001", "total_fee": "888",
              "refund_fee": "300", "notify_url": receiver.base + V2_REFUND_PATH}
    answer = mch.v2("/secapi/pay/refund", refund, "HMAC-SHA256")
    assert answer["result_code"] == "SUCCESS" and answer["refund_fee"] == "300"
    assert mch.v2("/secapi/pay/refund", refund, "HMAC-SHA256")["refund_id"] == answer["refund_id"]
    too_much = mch.v2("/secapi/pay/refund", {**refund, "out_refund_no": "V2RF000002", "refund_fee": "600"})
    assert too_much["result_code"] == "FAIL"
    dev(mch, "POST", "/__sim/pay/refund-notify", {"out_refund_no": "V2RF000001", "wait": True})
    outer = parse_xml(receiver.wait_for(2)[1]["body"])
    assert outer["return_code"] == "SUCCESS" and "sign" not in outer
    aes_key = hashlib.md5(API_KEY.encode()).hexdigest().encode()
    decryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).decryptor()
    padded = decryptor.update(base64.b64decode(outer["req_info"])) + decryptor.finalize()
    inner = ET.fromstring(padded[:-padded[-1]])
    assert inner.tag == "root"
    fields = {c.tag: c.text for c in inner}
    assert (fields["refund_status"], fields["refund_fee"], fields["out_refund_no"]) == ("SUCCESS", "300", "V2RF000001")
    view = dev(mch, "GET", "/__sim/pay/transactions/V2REFUND01")[1]
    assert view["refunds"][0]["client_cert_presented"] is False and view["refunded"] == 300


# -- wx.requestPayment ----------------------------------------------------------------------------

def test_request_payment_checks_pay_sign_then_pays(mch, receiver):
    prepay = mch.v3("POST", "/v3/pay/transactions/jsapi", order(receiver))[1]["prepay_id"]
    params = {"timeStamp": str(int(time.time())), "nonceStr": "n0nce", "package": f"prepay_id={prepay}",
              "signType": "RSA"}
    message = f"{APPID}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    good = b64(mch.key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256()))
    assert dev(mch, "POST", "/__sim/pay/request-payment", {**params, "paySign": "AAAA"})[0] == 400
    assert dev(mch, "POST", "/__sim/pay/request-payment", {**params, "timeStamp": 1, "paySign": good})[0] == 400
    status, out = dev(mch, "POST", "/__sim/pay/request-payment", {**params, "paySign": good, "wait": True})
    assert status == 200 and out["transaction"]["trade_state"] == "SUCCESS"
    mch.v2("/pay/unifiedorder", unified("V2REQPAY01", receiver=receiver))
    prepay = dev(mch, "GET", "/__sim/pay/transactions/V2REQPAY01")[1]["prepay_id"]
    v2 = {"appId": APPID, "timeStamp": "1700000000", "nonceStr": "abc", "package": f"prepay_id={prepay}",
          "signType": "MD5"}
    v2["paySign"] = v2_sign(v2, API_KEY, "MD5")
    assert dev(mch, "POST", "/__sim/pay/request-payment", v2)[0] == 200


# -- plumbing ---------------------------------------------------------------------------------------

def test_pay_endpoints_are_counted_and_faultable(mch, receiver):
    dev(mch, "POST", "/__sim/faults", {"endpoint": "pay_v3_jsapi", "http_status": 502})
    status, _, _ = mch.raw("POST", "/v3/pay/transactions/jsapi", b"{}")
    assert status == 502
    assert mch.v3("POST", "/v3/pay/transactions/jsapi", order(receiver))[0] == 200
    calls = dev(mch, "GET", "/__sim/stats")[1]["calls"]
    assert calls["pay_v3_jsapi"] == 2 and calls["pay_v2_refund"] == 0


def test_sim_primitives_match_the_public_vectors():
    if not (VECTORS / "vectors.json").exists():
        pytest.skip("shared wechat-vectors not present")
    vectors = json.loads((VECTORS / "vectors.json").read_text())
    for name in ("pay_v2_sign_md5", "pay_v2_sign_hmac", "pay_v2_sign_wechatpy_md5", "pay_v2_sign_wechatpy_hmac"):
        v = vectors[name]
        assert pay_crypto.v2_sign(v["params"], v["api_key"], v["sign_type"]) == v["expected_sign"].upper(), name
    v = vectors["refund_notify_v2"]
    assert pay_crypto.ecb_decrypt(v["api_key"], v["req_info"]) == v["expected_plaintext"]
    assert pay_crypto.ecb_encrypt(v["api_key"], v["expected_plaintext"]) == v["req_info"]
    for name in ("v3_gcm_java", "v3_gcm_go"):
        v = vectors[name]
        assert pay_crypto.gcm_encrypt(v["key"].encode(), v["nonce"], v["associated_data"], v["plaintext"]) \
            == v["ciphertext_b64"], name
    v = vectors["v3_rsa_sign"]
    key = serialization.load_pem_private_key((VECTORS / v["private_key_file"]).read_bytes(), None)
    assert pay_crypto.rsa_sign(key, v["message"]) == v["expected_signature"]
    notify = pay_crypto.parse_xml((VECTORS / "wechatpay-php-paysuccess-notify.xml").read_bytes())
    assert notify["return_code"] == "SUCCESS" and notify["total_fee"] == "1"


def test_stop_cuts_notify_retries_short(merchant_dir):
    simulator = start_simulator(apps={APPID: SECRET}, mchid=MCHID, apiv3_key=APIV3_KEY, api_key=API_KEY,
                                merchant_cert=merchant_dir[0] / "apiclient_cert.pem",
                                notify_retry_delays_ms=(30_000,))
    try:
        client = Merchant(simulator.base_url, serialization.load_pem_private_key(
            (merchant_dir[0] / "apiclient_key.pem").read_bytes(), None), merchant_dir[1])
        client.platform = {simulator.state.pay.signer()[0]: simulator.state.pay.signer()[1].public_key()}
        dead = Receiver()
        dead.script(V3_PATH, (500, b""))
        place_and_pay(client, dead, wait=False)
        dead.wait_for(1)
        dead.stop()
    finally:
        started = time.monotonic()
        simulator.stop()
    assert time.monotonic() - started < 3


def test_cli_pay_and_merchant_keys(mch, receiver, tmp_path):
    mch.v3("POST", "/v3/pay/transactions/jsapi", order(receiver, no="SO_CLI_0001"))
    run = [sys.executable, "-m", "local.wechat_sim"]
    proc = subprocess.run(run + ["pay", "--base", f"http://127.0.0.1:{mch.port}", "SO_CLI_0001"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["newly_paid"] is True and out["notifies"][0]["status"] == "delivered"
    proc = subprocess.run(run + ["merchant-keys", str(tmp_path)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    serial = json.loads(proc.stdout)["serial"]
    cert = x509.load_pem_x509_certificate((tmp_path / "apiclient_cert.pem").read_bytes())
    assert format(cert.serial_number, "X") == serial and len(serial) == 40
