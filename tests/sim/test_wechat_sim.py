"""Behaviour of the local WeChat simulator (local/wechat_sim), over real HTTP."""

from __future__ import annotations

import base64
import http.client
import json
import re
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from local.wechat_sim import start_simulator
from local.wechat_sim.server import MAX_BODY, json_response
from local.wechat_sim.state import SimState

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_A, SECRET_A = "wx_app_a", "secret_a"
APP_B, SECRET_B = "wx_app_b", "secret_b"
INVALID_TOKEN = "invalid credential, access_token is invalid or not latest"

# Never route test traffic through an environment proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Client:
    """Minimal JSON client; returns (http_status, parsed body or text)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def call(self, method: str, path: str, body: object = None, raw: bytes | None = None,
             timeout: float = 5):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with _OPENER.open(req, timeout=timeout) as resp:
                status, ctype, payload = resp.status, resp.headers["Content-Type"], resp.read()
        except urllib.error.HTTPError as err:
            status, ctype, payload = err.code, err.headers["Content-Type"], err.read()
        text = payload.decode("utf-8")
        return status, (json.loads(text) if "json" in (ctype or "") else text)

    def get(self, path: str):
        return self.call("GET", path)[1]

    def post(self, path: str, body: object = None, raw: bytes | None = None):
        return self.call("POST", path, body, raw)[1]

    # -- WeChat helpers ------------------------------------------------------
    def login(self, code: str, appid: str = APP_A, secret: str = SECRET_A,
              grant_type: str = "authorization_code"):
        return self.get(f"/sns/jscode2session?appid={appid}&secret={secret}"
                        f"&js_code={code}&grant_type={grant_type}")

    def token(self, appid: str = APP_A, secret: str = SECRET_A, force: bool = False,
              grant_type: str = "client_credential"):
        return self.post("/cgi-bin/stable_token", {"grant_type": grant_type, "appid": appid,
                                                   "secret": secret, "force_refresh": force})

    def phone(self, token: str, code: str):
        return self.post(f"/wxa/business/getuserphonenumber?access_token={token}", {"code": code})

    def send(self, token: str, message: dict):
        return self.post(f"/cgi-bin/message/subscribe/send?access_token={token}", message)


@pytest.fixture(scope="module")
def clock():
    return FakeClock()


@pytest.fixture(scope="module")
def sim(clock):
    simulator = start_simulator(apps={APP_A: SECRET_A, APP_B: SECRET_B}, clock=clock)
    yield simulator
    simulator.stop()


@pytest.fixture
def api(sim):
    sim.state.reset()  # every test starts from an empty WeChat
    return Client(sim.base_url)


def _message(touser: str, **overrides) -> dict:
    message = {"touser": touser, "template_id": "tmpl_order_shipped", "page": "pages/order/detail?id=1",
               "data": {"thing1": {"value": "订单已发货"}, "character_string2": {"value": "SO20240001"},
                        "amount3": {"value": "¥12.50"}, "time4": {"value": "2024-05-01 12:00"}},
               "miniprogram_state": "formal", "lang": "zh_CN"}
    message.update(overrides)
    return message


# -- server basics -------------------------------------------------------------

def test_binds_to_loopback_and_reports_base_url(sim):
    assert sim.base_url == f"http://127.0.0.1:{sim.port}" and sim.port > 0


def test_health(api):
    assert api.get("/__sim/health") == {"ok": True}


def test_unknown_path_is_404_invalid_url(api):
    assert api.call("GET", "/nope") == (404, {"errcode": 40066, "errmsg": "invalid url"})


def test_wrong_method_gets_wechat_method_error(api):
    assert api.get("/cgi-bin/stable_token")["errcode"] == 43002
    assert api.post("/sns/jscode2session", {})["errcode"] == 43001


def test_non_json_body_is_data_format_error(api):
    assert api.post("/cgi-bin/stable_token", raw=b"grant_type=client_credential")["errcode"] == 47001
    assert api.post("/cgi-bin/stable_token", raw=b"[1, 2]")["errcode"] == 47001


def test_body_over_one_mib_is_rejected_with_413(sim):
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    try:
        conn.request("POST", "/cgi-bin/stable_token", body=b"x" * (MAX_BODY + 1))
        assert conn.getresponse().status == 413
    finally:
        conn.close()


def test_handler_crash_answers_errcode_minus_one(sim, api):
    def boom(req):
        raise RuntimeError("simulated bug")
    sim.router.add("GET", "/__test/boom", boom)
    assert api.call("GET", "/__test/boom") == (200, {"errcode": -1, "errmsg": "system error"})
    assert api.get("/__sim/health") == {"ok": True}  # server still serving


def test_router_supports_path_params_for_later_modules(sim, api):
    sim.router.add("GET", "/__test/orders/{out_trade_no}",
                   lambda req: json_response({"id": req.params["out_trade_no"]}))
    assert api.get("/__test/orders/SO123") == {"id": "SO123"}


# -- jscode2session -------------------------------------------------------------

def test_login_returns_openid_session_key_unionid_without_errcode(api):
    body = api.login("alice-1")
    assert set(body) == {"openid", "session_key", "unionid"}
    assert re.fullmatch(r"o[A-Za-z0-9]{27}", body["openid"])
    assert re.fullmatch(r"o[A-Za-z0-9]{27}", body["unionid"])
    assert len(base64.b64decode(body["session_key"], validate=True)) == 16


def test_openid_is_stable_per_code_prefix(api):
    alice1, alice2, bob = api.login("alice-1"), api.login("alice-2"), api.login("bob-1")
    assert alice1["openid"] == alice2["openid"] != bob["openid"]
    assert alice1["unionid"] == alice2["unionid"] != bob["unionid"]
    assert api.login("carol")["openid"] == api.get("/__sim/openid?appid=wx_app_a&code=carol")["openid"]


def test_openid_differs_per_app_but_unionid_is_shared(api):
    a = api.login("dave-1")
    b = api.login("dave-2", appid=APP_B, secret=SECRET_B)
    assert a["openid"] != b["openid"] and a["unionid"] == b["unionid"]


def test_session_key_is_fresh_per_login_and_recorded(api):
    keys = {api.login(f"erin-{i}")["session_key"] for i in range(3)}
    assert len(keys) == 3
    assert set(api.get("/__sim/session-keys")["items"]) == keys


def test_code_is_single_use(api):
    assert "openid" in api.login("frank-1")
    assert api.login("frank-1") == {"errcode": 40029, "errmsg": "invalid code"}


def test_code_is_single_use_under_concurrent_logins(api):
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: api.login("race-1"), range(16)))
    assert sum("openid" in r for r in results) == 1
    assert all(r.get("errcode") == 40029 for r in results if "openid" not in r)


@pytest.mark.parametrize("code", ["", "has%20space", "x" * 129, "%E4%BD%A0", "a%2Fb"])
def test_malformed_code_is_invalid(api, code):
    assert api.login(code)["errcode"] == 40029


@pytest.mark.parametrize("kwargs, errcode", [
    ({"appid": "wx_unknown"}, 40013),
    ({"secret": "wrong"}, 40125),
    ({"grant_type": "client_credential"}, 40002),
])
def test_login_rejects_bad_app_credentials(api, kwargs, errcode):
    assert api.login("gina-1", **kwargs)["errcode"] == errcode


def test_login_rate_limit_per_openid_per_minute():
    clock = FakeClock()
    sim = start_simulator(apps={APP_A: SECRET_A}, clock=clock, code2session_per_minute=3)
    try:
        api = Client(sim.base_url)
        assert all("openid" in api.login(f"henry-{i}") for i in range(3))
        limited = api.login("henry-3")
        assert limited["errcode"] == 45011 and "minute-quota" in limited["errmsg"]
        assert "openid" in api.login("ivy-1")  # other users are unaffected
        clock.advance(61)
        assert "openid" in api.login("henry-3")  # refused code was not consumed
    finally:
        sim.stop()


# -- stable_token ----------------------------------------------------------------

def test_stable_token_is_reused_while_valid_and_expires_in_counts_down(api, clock):
    first = api.token()
    assert first["expires_in"] == 7200 and len(first["access_token"]) >= 64
    clock.advance(100)
    second = api.token()
    assert second == {"access_token": first["access_token"], "expires_in": 7100}


def test_force_refresh_keeps_previous_token_valid_for_five_minutes(api, clock):
    old = api.token()["access_token"]
    new = api.token(force=True)["access_token"]
    assert new != old
    assert api.token()["access_token"] == new
    clock.advance(299)
    assert api.phone(old, "phone-13800138000-a")["errcode"] == 0
    clock.advance(2)
    assert api.phone(old, "phone-13800138000-b") == {"errcode": 40001, "errmsg": INVALID_TOKEN}
    assert api.phone(new, "phone-13800138000-c")["errcode"] == 0


def test_token_expires_after_ttl_and_a_new_one_is_issued(api, clock):
    old = api.token()["access_token"]
    clock.advance(7200)
    assert api.phone(old, "phone-13800138000")["errcode"] == 40001
    fresh = api.token()
    assert fresh["access_token"] != old and fresh["expires_in"] == 7200


@pytest.mark.parametrize("kwargs, errcode", [
    ({"appid": "wx_unknown"}, 40013),
    ({"secret": "wrong"}, 40125),
    ({"grant_type": "authorization_code"}, 40002),
])
def test_stable_token_rejects_bad_credentials(api, kwargs, errcode):
    assert api.token(**kwargs)["errcode"] == errcode


def test_tokens_are_per_app(api):
    assert api.token()["access_token"] != api.token(APP_B, SECRET_B)["access_token"]


# -- getuserphonenumber -----------------------------------------------------------

def test_phone_number_comes_from_phone_code(api):
    body = api.phone(api.token()["access_token"], "phone-13912345678-1")
    assert body["errcode"] == 0 and body["errmsg"] == "ok"
    info = body["phone_info"]
    assert info["phoneNumber"] == info["purePhoneNumber"] == "13912345678"
    assert info["countryCode"] == "86" and info["watermark"]["appid"] == APP_A
    assert isinstance(info["watermark"]["timestamp"], int)


def test_phone_number_is_derived_deterministically_for_other_codes(api):
    token = api.token()["access_token"]
    first = api.phone(token, "whatever")["phone_info"]["purePhoneNumber"]
    api.post("/__sim/reset")
    token = api.token()["access_token"]
    assert api.phone(token, "whatever")["phone_info"]["purePhoneNumber"] == first
    assert re.fullmatch(r"1[3-9]\d{9}", first)


def test_phone_code_is_single_use(api):
    token = api.token()["access_token"]
    assert api.phone(token, "phone-13800138000")["errcode"] == 0
    assert api.phone(token, "phone-13800138000") == {"errcode": 40029, "errmsg": "invalid code"}


def test_phone_requires_valid_access_token(api):
    assert api.post("/wxa/business/getuserphonenumber", {"code": "x"})["errcode"] == 41001
    assert api.phone("not-a-token", "x")["errcode"] == 40001


def test_phone_rejects_missing_code(api):
    token = api.token()["access_token"]
    assert api.post(f"/wxa/business/getuserphonenumber?access_token={token}", {})["errcode"] == 40029


# -- subscribe message ---------------------------------------------------------------

@pytest.fixture
def sender(api):
    """(token, openid) of a logged-in user ready to receive messages."""
    return api.token()["access_token"], api.login("judy-1")["openid"]


def test_subscribe_send_accepts_valid_message_and_records_it(api, sender, clock):
    token, openid = sender
    body = api.send(token, _message(openid))
    assert body["errcode"] == 0 and body["errmsg"] == "ok" and isinstance(body["msgid"], int)
    items = api.get(f"/__sim/messages?touser={openid}")["items"]
    assert len(items) == 1
    assert items[0]["template_id"] == "tmpl_order_shipped" and items[0]["appid"] == APP_A
    assert items[0]["data"]["thing1"]["value"] == "订单已发货"
    assert items[0]["received_at"] == clock.now
    assert api.get("/__sim/messages?touser=someone_else")["items"] == []


def test_subscribe_send_rejects_openid_not_issued_for_that_app(api, sender):
    token, _ = sender
    other_app_user = api.login("kim-1", appid=APP_B, secret=SECRET_B)["openid"]
    assert api.send(token, _message(other_app_user)) == {"errcode": 40003, "errmsg": "invalid openid"}
    assert api.send(token, _message("o" + "x" * 27))["errcode"] == 40003


def test_subscribe_send_rejects_overlong_thing_value(api, sender):
    token, openid = sender
    assert api.send(token, _message(openid, data={"thing1": {"value": "字" * 20}}))["errcode"] == 0
    body = api.send(token, _message(openid, data={"thing1": {"value": "字" * 21}}))
    assert body["errcode"] == 47003 and "data.thing1.value" in body["errmsg"]


@pytest.mark.parametrize("data", [
    {"thing1": {"value": ""}},
    {"thing1": "plain string"},
    {"thing1": {"value": 5}},
    {"colour1": {"value": "red"}},
    {"thing": {"value": "no index"}},
    {"symbol1": {"value": "%%%%%%"}},
    {"phrase1": {"value": "六个字的短语"}},
    {"name1": {"value": "x" * 11}},
    {"number1": {"value": "12a"}},
    {"letter1": {"value": "abc1"}},
    {"character_string1": {"value": "x" * 33}},
    {"time1": {"value": "  "}},
    [],
    {},
])
def test_subscribe_send_rejects_invalid_data(api, sender, data):
    token, openid = sender
    assert api.send(token, _message(openid, data=data))["errcode"] == 47003


@pytest.mark.parametrize("overrides, errcode", [
    ({"template_id": ""}, 40037),
    ({"template_id": None}, 40037),
    ({"miniprogram_state": "beta"}, 47003),
    ({"lang": "fr_FR"}, 47003),
    ({"page": 42}, 47003),
])
def test_subscribe_send_validates_fields(api, sender, overrides, errcode):
    token, openid = sender
    assert api.send(token, _message(openid, **overrides))["errcode"] == errcode


def test_subscribe_send_requires_valid_access_token(api, sender):
    _, openid = sender
    assert api.post("/cgi-bin/message/subscribe/send", _message(openid))["errcode"] == 41001
    assert api.send("stale", _message(openid))["errcode"] == 40001


# -- dev endpoints: stats, faults, reset -------------------------------------------

def test_stats_count_calls_per_endpoint(api):
    api.token()
    api.token()
    api.login("leo-1")
    calls = api.get("/__sim/stats")["calls"]
    open_api = {"jscode2session", "stable_token", "getuserphonenumber", "subscribe_send"}
    assert {k: v for k, v in calls.items() if k in open_api} == {
        "jscode2session": 1, "stable_token": 2, "getuserphonenumber": 0, "subscribe_send": 0}
    assert all(v == 0 for k, v in calls.items() if k not in open_api)  # e.g. the Pay endpoints


def test_fault_returns_errcode_for_n_calls_then_recovers(api):
    ok = api.post("/__sim/faults", {"endpoint": "jscode2session", "errcode": -1,
                                    "errmsg": "system error", "times": 2})
    assert ok["ok"] is True
    assert api.login("mia-1") == {"errcode": -1, "errmsg": "system error"}
    assert api.login("mia-2") == {"errcode": -1, "errmsg": "system error"}
    assert "openid" in api.login("mia-3")
    assert api.get("/__sim/faults")["items"] == []


def test_fault_with_http_status_returns_text_body(api):
    api.post("/__sim/faults", {"endpoint": "stable_token", "http_status": 502})
    status, body = api.call("POST", "/cgi-bin/stable_token", {})
    assert status == 502 and isinstance(body, str)
    assert "access_token" in api.token()


def test_fault_delay_is_applied_before_answer(api):
    api.post("/__sim/faults", {"endpoint": "stable_token", "errcode": None, "delay_ms": 300})
    started = time.monotonic()
    body = api.token()
    assert time.monotonic() - started >= 0.29
    assert "access_token" in body  # errcode null: latency only, normal answer


def test_fault_delay_can_trip_a_client_timeout(api):
    api.post("/__sim/faults", {"endpoint": "subscribe_send", "delay_ms": 1500})
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        api.call("POST", "/cgi-bin/message/subscribe/send?access_token=x", {}, timeout=0.3)


@pytest.mark.parametrize("spec", [
    {"endpoint": "no_such_endpoint"},
    {"endpoint": "stable_token", "times": 0},
    {"endpoint": "stable_token", "delay_ms": 10**9},
    {"endpoint": "stable_token", "http_status": 99},
    {"endpoint": "stable_token", "errcode": "x"},
])
def test_fault_spec_is_validated(api, spec):
    status, body = api.call("POST", "/__sim/faults", spec)
    assert status == 400 and body["ok"] is False


def test_reset_clears_state(api):
    token = api.token()["access_token"]
    api.login("nina-1")
    api.post("/__sim/faults", {"endpoint": "jscode2session"})
    assert api.post("/__sim/reset") == {"ok": True}
    assert api.get("/__sim/session-keys")["items"] == []
    assert api.get("/__sim/faults")["items"] == []
    assert api.phone(token, "x")["errcode"] == 40001
    assert "openid" in api.login("nina-1")  # codes are forgotten too


def test_advance_time_endpoint_expires_tokens_from_another_process(api):
    token = api.token()["access_token"]
    api.post("/__sim/advance-time", {"seconds": 7200})
    assert api.phone(token, "x")["errcode"] == 40001


# -- lifecycle & CLI --------------------------------------------------------------

def test_default_apps_come_from_env(monkeypatch):
    monkeypatch.setenv("WECHAT_APPID", "wx_env")
    monkeypatch.setenv("WECHAT_SECRET", "env_secret")
    assert SimState().apps == {"wx_env": "env_secret"}
    monkeypatch.delenv("WECHAT_APPID")
    assert SimState().apps == {"wx_demo_appid": "demo_app_secret"}


def test_stop_is_idempotent_and_frees_the_port():
    sim = start_simulator()
    sim.stop()
    sim.stop()
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", sim.port, timeout=1).request("GET", "/__sim/health")


def test_start_simulator_refuses_non_loopback_host():
    with pytest.raises(ValueError):
        start_simulator(host="0.0.0.0")


def _run_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "local.wechat_sim", *args], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cli_refuses_non_loopback_host():
    proc = _run_cli("--host", "0.0.0.0", "--port", "0")
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 2 and "loopback" in err


def test_cli_serves_and_stops_on_sigterm():
    proc = _run_cli("--port", "0", "--appid", "wx_cli", "--secret", "cli_secret", "--token-ttl", "60")
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "simulator did not print its listening line"
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"wechat-sim listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        token = Client(match.group(1)).token("wx_cli", "cli_secret")
        assert token["expires_in"] == 60
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.communicate(timeout=10)
