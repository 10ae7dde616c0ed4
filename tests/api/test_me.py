"""The user's own profile: nickname and avatar, phone number binding, privacy consent."""
from __future__ import annotations

import json

from chalicelib.storage.users import UserRecord
from tests.api.helpers import assert_envelope, call, log_in, sim_call, sim_fault


def consenting(client, code: str = "alice-1") -> tuple[str, dict]:
    """A logged-in user who agreed to the privacy policy (binding a phone number needs it)."""
    token, user = log_in(client, code)
    assert call(client, "POST", "/v1/me/privacy-consent", {"version": "2026-01"}, token=token)[0] == 200
    return token, user


def test_patch_me_changes_nickname_and_avatar(client):
    token, _ = log_in(client)
    status, me, _ = call(client, "PATCH", "/v1/me",
                         {"nickname": "鲜果爱好者", "avatar_url": "https://img.example.com/a.png"}, token=token)
    assert status == 200
    assert me["nickname"] == "鲜果爱好者" and me["avatar_url"] == "https://img.example.com/a.png"
    assert call(client, "GET", "/v1/me", token=token)[1]["nickname"] == "鲜果爱好者"


def test_patch_me_rejects_a_bad_avatar_url_and_changes_nothing(client):
    token, user = log_in(client)
    status, body, _ = call(client, "PATCH", "/v1/me", {"nickname": "n", "avatar_url": "not a url"}, token=token)
    assert status == 400
    assert_envelope(body, "validation_error")
    assert UserRecord.get(user["user_id"]).nickname is None


def test_bind_phone_stores_the_number_and_answers_it_masked(client):
    token, user = consenting(client)
    status, me, _ = call(client, "POST", "/v1/me/phone", {"code": "phone-13800138000-1"}, token=token)
    assert status == 200
    assert me["phone_masked"] == "138****8000"
    assert "13800138000" not in json.dumps(me)
    assert UserRecord.get(user["user_id"]).phone == "13800138000"


def test_the_access_token_is_fetched_once_and_shared(client, wechat_sim):
    token, _ = consenting(client)
    for n in range(3):
        assert call(client, "POST", "/v1/me/phone", {"code": f"phone-1380013800{n}"}, token=token)[0] == 200
    assert sim_call(wechat_sim, "GET", "/__sim/stats")["calls"].get("stable_token") == 1


def test_a_stale_access_token_is_refreshed_once_and_the_call_retried(client, wechat_sim):
    token, _ = consenting(client)
    assert call(client, "POST", "/v1/me/phone", {"code": "phone-13800138000"}, token=token)[0] == 200
    sim_fault(wechat_sim, "getuserphonenumber", errcode=40001, errmsg="invalid credential")
    status, me, _ = call(client, "POST", "/v1/me/phone", {"code": "phone-13900139000"}, token=token)
    assert status == 200 and me["phone_masked"] == "139****9000"
    assert sim_call(wechat_sim, "GET", "/__sim/stats")["calls"]["stable_token"] == 2


def test_a_used_phone_code_is_401_and_keeps_the_old_number(client):
    token, user = consenting(client)
    assert call(client, "POST", "/v1/me/phone", {"code": "phone-13800138000"}, token=token)[0] == 200
    status, body, _ = call(client, "POST", "/v1/me/phone", {"code": "phone-13800138000"}, token=token)
    assert status == 401
    assert_envelope(body, "invalid_wechat_code")
    assert UserRecord.get(user["user_id"]).phone == "13800138000"


def test_privacy_consent_is_recorded_with_its_version(client):
    token, user = log_in(client)
    status, me, _ = call(client, "POST", "/v1/me/privacy-consent", {"version": "2026-11"}, token=token)
    assert status == 200 and me["privacy_consent_version"] == "2026-11"
    assert UserRecord.get(user["user_id"]).privacy_consented_at is not None


def test_binding_a_phone_number_needs_privacy_consent_and_asks_wechat_nothing_without_it(client, wechat_sim):
    token, user = log_in(client)
    status, body, _ = call(client, "POST", "/v1/me/phone", {"code": "phone-13800138000"}, token=token)
    assert status == 403
    assert_envelope(body, "consent_required")
    assert sim_call(wechat_sim, "GET", "/__sim/stats")["calls"].get("getuserphonenumber", 0) == 0
    assert UserRecord.get(user["user_id"]).phone is None
