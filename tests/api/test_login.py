"""POST /v1/auth/login and GET /v1/me through the simulator's jscode2session."""
from __future__ import annotations

import json

from chalicelib.storage.sessions import SessionRecord
from chalicelib.storage.users import UserRecord
from tests.api.helpers import assert_envelope, call, log_in, sim_fault, sim_session_keys


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
