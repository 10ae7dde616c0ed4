"""POST /v1/auth/login and GET /v1/me through the simulator's jscode2session; login and logout
(user and admin) against a WeChat that is not the simulator; logout with odd tokens and bodies."""
from __future__ import annotations

import json

import pytest

from chalicelib.storage.sessions import SessionRecord
from chalicelib.storage.users import UserRecord
from tests.api.helpers import admin_token, assert_envelope, call, log_in, sim_fault, sim_session_keys


def _count(model) -> int:
    return sum(1 for _ in model.scan())


def test_first_login_creates_the_user_and_returns_a_token(client):
    status, body, _ = call(client, "POST", "/v1/auth/login", {"code": "alice-1"})
    assert status == 200
    assert body["is_new_user"] is True
    assert body["expires_in"] > 0
    assert body["user"]["member_level"] == "normal" and body["user"]["points"] == 0
    status, me, _ = call(client, "GET", "/v1/me", token=body["token"])
    assert status == 200
    assert me["user_id"] == body["user"]["user_id"]


def test_same_code_prefix_logs_in_the_same_user_again(client):
    _, first = log_in(client, "alice-1")
    status, body, _ = call(client, "POST", "/v1/auth/login", {"code": "alice-2"})
    assert status == 200 and body["is_new_user"] is False
    assert body["user"]["user_id"] == first["user_id"]
    assert _count(UserRecord) == 1 and _count(SessionRecord) == 2


def test_login_never_returns_the_wechat_session_key_or_openid(client, wechat_sim):
    status, body, _ = call(client, "POST", "/v1/auth/login", {"code": "alice-1"})
    assert status == 200
    text = json.dumps(body)
    keys = sim_session_keys(wechat_sim)
    assert keys
    for session_key in keys:
        assert session_key not in text
    assert "openid" not in text and "session_key" not in text


def test_a_reused_code_is_401_and_writes_nothing(client):
    log_in(client, "alice-1")
    users_before, sessions_before = _count(UserRecord), _count(SessionRecord)
    status, body, _ = call(client, "POST", "/v1/auth/login", {"code": "alice-1"})
    assert status == 401
    assert_envelope(body, "invalid_wechat_code")
    assert (_count(UserRecord), _count(SessionRecord)) == (users_before, sessions_before)


def test_wechat_rate_limit_is_429_with_retry_after(client, wechat_sim):
    sim_fault(wechat_sim, "jscode2session", errcode=45011, errmsg="api minute-quota reach limit")
    status, body, headers = call(client, "POST", "/v1/auth/login", {"code": "alice-1"})
    assert status == 429
    assert_envelope(body, "wechat_rate_limited")
    assert int(headers["Retry-After"]) >= 1


def test_wechat_system_error_or_outage_is_502_and_writes_nothing(client, wechat_sim):
    sim_fault(wechat_sim, "jscode2session", errcode=-1, errmsg="system error")
    status, body, _ = call(client, "POST", "/v1/auth/login", {"code": "alice-1"})
    assert status == 502
    assert_envelope(body, "wechat_unavailable")
    sim_fault(wechat_sim, "jscode2session", http_status=503)
    status, body, _ = call(client, "POST", "/v1/auth/login", {"code": "alice-2"})
    assert status == 502
    assert _count(UserRecord) == 0 and _count(SessionRecord) == 0


def test_unreachable_wechat_is_502(client, monkeypatch):
    from tests.conftest import reset_process_caches

    monkeypatch.setenv("WECHAT_API_BASE", "http://127.0.0.1:9")  # discard port: nothing listens
    reset_process_caches()
    status, body, _ = call(client, "POST", "/v1/auth/login", {"code": "alice-1"})
    assert status == 502
    assert_envelope(body, "wechat_unavailable")


# --- A WeChat that is not the simulator (issue 12): every answer is a 4xx or a 502 envelope -------
#
# The mapping (chalicelib/services/wechat_errors.py): a code WeChat refuses (40029 invalid, 40163
# already used, 40226 high-risk user blocked, 41008 missing) is 401 invalid_wechat_code: the
# mini-program calls wx.login again. A rate limit (45009, 45011) is 429 wechat_rate_limited with
# Retry-After. WeChat's own system error (-1), any errcode we do not know, a refusal of our own
# credentials (40013, 40125, 40164, ...), and a WeChat that does not answer usefully (refused
# connection, timeout, hang-up, HTTP error, a body that is not the JSON object documented) are 502
# wechat_unavailable. Never a 500; nothing is written.

@pytest.fixture
def foreign_wechat(client, monkeypatch):
    """The app pointed at a WeChat that is not the simulator (tests/fuzz/foreign_wechat.py)."""
    from tests.conftest import reset_process_caches
    from tests.fuzz.foreign_wechat import ForeignWeChat

    with ForeignWeChat() as wechat:
        monkeypatch.setenv("WECHAT_API_BASE", wechat.url)
        monkeypatch.setenv("WECHAT_HTTP_TIMEOUT_SECONDS", "0.5")
        reset_process_caches()
        yield wechat
    reset_process_caches()


def _admin_login_and_logout_work(client) -> None:
    """The merchant routes never call WeChat: whatever WeChat does, they answer as usual."""
    token = admin_token(client)
    status, body, _ = call(client, "POST", "/v1/admin/auth/logout", token=token)
    assert status == 204, body
    status, body, _ = call(client, "POST", "/v1/admin/auth/logout", token=token)
    assert status == 401
    assert_envelope(body, "token_revoked")


def test_a_foreign_wechat_refusing_every_unknown_code_is_401_and_an_issued_code_logs_in(client, foreign_wechat):
    for code in ("alice-1", "0", "a" * 128, "fw1deadbeef"):
        status, body, _ = call(client, "POST", "/v1/auth/login", {"code": code})
        assert status == 401, (code, body)
        assert_envelope(body, "invalid_wechat_code")
    assert _count(UserRecord) == 0 and _count(SessionRecord) == 0
    status, body, _ = call(client, "POST", "/v1/auth/login", {"code": foreign_wechat.issue_code()})
    assert status == 200, body
    status, _, _ = call(client, "POST", "/v1/auth/logout", token=body["token"])
    assert status == 204
    _admin_login_and_logout_work(client)


@pytest.mark.parametrize("errcode, status, code", [
    (40029, 401, "invalid_wechat_code"),
    (40163, 401, "invalid_wechat_code"),
    (40226, 401, "invalid_wechat_code"),
    (41008, 401, "invalid_wechat_code"),
    (45011, 429, "wechat_rate_limited"),
    (45009, 429, "wechat_rate_limited"),
    (-1, 502, "wechat_unavailable"),
    (40013, 502, "wechat_unavailable"),   # WeChat does not know our appid
    (40125, 502, "wechat_unavailable"),   # ... or our secret
    (40164, 502, "wechat_unavailable"),   # ... or our IP
    (99999, 502, "wechat_unavailable"),   # an errcode nobody documented
    ("40029", 401, "invalid_wechat_code"),  # a number sent as a string is still that number
])
def test_a_wechat_answering_an_errcode_is_mapped_deliberately(client, foreign_wechat, errcode, status, code):
    foreign_wechat.answer_with(200, {"errcode": errcode, "errmsg": "refused"})
    answer, body, headers = call(client, "POST", "/v1/auth/login", {"code": "alice-1"})
    assert answer == status, body
    assert_envelope(body, code)
    if status == 429:
        assert int(headers["Retry-After"]) >= 1
    assert _count(UserRecord) == 0 and _count(SessionRecord) == 0
    _admin_login_and_logout_work(client)


_GARBAGE = {
    "http_500_html": (500, b"<html>500 Internal Server Error</html>"),
    "http_500_with_an_errcode": (500, {"errcode": 40029, "errmsg": "invalid code"}),
    "http_404": (404, b"not found"),
    "not_json": (200, b"<html>busy</html>"),
    "empty_body": (200, b""),
    "json_array": (200, [1, 2]),
    "json_string": (200, "ok"),
    "errcode_not_a_number": (200, {"errcode": "busy", "errmsg": "?"}),
    "errcode_an_object": (200, {"errcode": {"code": 1}, "errmsg": "?"}),
    "errcode_true": (200, {"errcode": True, "openid": "o1", "session_key": "k"}),
    "deeply_nested": (200, b'{"errcode": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "no_openid": (200, {"session_key": "k"}),
    "openid_not_a_string": (200, {"openid": {"id": 1}, "session_key": "k"}),
    "openid_empty": (200, {"openid": "", "session_key": "k"}),
    "openid_too_long": (200, {"openid": "o" * 5000, "session_key": "k"}),
    "session_key_null": (200, {"openid": "o1", "session_key": None}),
    "unionid_a_number": (200, {"openid": "o1", "session_key": "k", "unionid": 12}),
    "over_a_mebibyte": (200, b'{"openid": "o1", "session_key": "k", "pad": "' + b"x" * (1 << 20) + b'"}'),
    "hang_up": (0, None),
}


@pytest.mark.parametrize("answer", list(_GARBAGE), ids=list(_GARBAGE))
def test_a_wechat_answering_garbage_is_502_and_writes_nothing(client, foreign_wechat, answer):
    foreign_wechat.answer_with(*_GARBAGE[answer])
    status, body, _ = call(client, "POST", "/v1/auth/login", {"code": "alice-1"})
    assert status == 502, body
    assert_envelope(body, "wechat_unavailable")
    assert _count(UserRecord) == 0 and _count(SessionRecord) == 0
    _admin_login_and_logout_work(client)


def test_a_wechat_slower_than_the_timeout_is_502(client, foreign_wechat):
    foreign_wechat.answer_with(200, {"openid": "o1", "session_key": "k"}, delay_seconds=1.5)
    status, body, _ = call(client, "POST", "/v1/auth/login", {"code": "alice-1"})
    assert status == 502, body
    assert_envelope(body, "wechat_unavailable")
    assert _count(UserRecord) == 0


def test_a_wechat_not_listening_is_502_and_admin_routes_still_work(client, monkeypatch):
    from local.processes import free_port
    from tests.conftest import reset_process_caches

    monkeypatch.setenv("WECHAT_API_BASE", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    reset_process_caches()
    status, body, _ = call(client, "POST", "/v1/auth/login", {"code": "alice-1"})
    assert status == 502
    assert_envelope(body, "wechat_unavailable")
    _admin_login_and_logout_work(client)


# --- Logging out with odd tokens and bodies -------------------------------------------------------

_ODD_TOKENS = {
    "non_ascii_signature": "v1.eyJzaWQiOiJ4In0.\u00e9\u00e9",
    "non_ascii_everywhere": "v1.\u00e9.\u00e9",
    "latin1_only": "\u00ff\u00fe",
    "control_characters": "v1.a\x01.b\x7f",
    "spaces_inside": "v1.a b.c",
    "only_dots": "v1" + "." * 300,
    "very_long": "v1." + "A" * 8000 + ".sig",
    "padding_and_slashes": "v1.//==.++==",
}


@pytest.mark.parametrize("path", ["/v1/auth/logout", "/v1/admin/auth/logout"])
@pytest.mark.parametrize("token", list(_ODD_TOKENS), ids=list(_ODD_TOKENS))
def test_logout_with_an_odd_token_is_401(client, path, token):
    status, body, _ = call(client, "POST", path, headers={"Authorization": f"Bearer {_ODD_TOKENS[token]}"})
    assert status == 401, body
    assert_envelope(body, "invalid_token")


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic YWRtaW46eA==", "bearer\tx", "Token abc", ""])
def test_logout_with_an_odd_authorization_header_is_401(client, header):
    for path in ("/v1/auth/logout", "/v1/admin/auth/logout"):
        status, body, _ = call(client, "POST", path, headers={"Authorization": header})
        assert status == 401, (path, header, body)
        assert body["Code"] in ("unauthorized", "invalid_token"), body
        assert_envelope(body)


@pytest.mark.parametrize("content_type, raw", [
    ("text/plain", "bye"),
    ("application/x-www-form-urlencoded", "a=1&b=2"),
    ("application/json", "{not json"),
    ("application/json", "\u00ff\u00fe"),
    ("application/octet-stream", "\x00\x01"),
])
def test_logout_ignores_whatever_body_it_is_sent(client, content_type, raw):
    user_token, _ = log_in(client, "alice-1")
    token = admin_token(client)
    for path, bearer in (("/v1/auth/logout", user_token), ("/v1/admin/auth/logout", token)):
        status, body, _ = call(client, "POST", path, token=bearer, raw=raw, headers={"Content-Type": content_type})
        assert status == 204, (path, body)
        status, body, _ = call(client, "POST", path, token=bearer)
        assert status == 401 and body["Code"] == "token_revoked", (path, body)
