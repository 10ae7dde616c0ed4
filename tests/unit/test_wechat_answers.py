"""What the WeChat adapters make of every answer a WeChat (or something in its place) can give,
and what clients see for each failure (chalicelib/services/wechat_errors.py has the table)."""
from __future__ import annotations

import pytest

from chalicelib.errors import RateLimited, Unauthorized, UpstreamError
from chalicelib.services.wechat_errors import (CREDENTIAL_ERRCODES, INVALID_CODE_ERRCODES, RATE_LIMIT_ERRCODES,
                                               wechat_failures_as_app_errors)
from chalicelib.wechat import http, open_api
from chalicelib.wechat.http import MAX_ANSWER_BYTES, WeChatApiError, WeChatUnavailable
from tests.fuzz.foreign_wechat import ForeignWeChat


@pytest.fixture
def wechat():
    with ForeignWeChat() as fake:
        yield fake


def _call(wechat: ForeignWeChat, timeout: float = 2.0) -> dict:
    return http.call_json("GET", f"{wechat.url}/sns/jscode2session", query={"js_code": "x"}, timeout=timeout,
                          api="jscode2session")


@pytest.mark.parametrize("status, body", [
    (500, b"<html>oops</html>"),
    (502, {"errcode": -1}),
    (200, b"<html>busy</html>"),
    (200, b""),
    (200, b"\xff\xfe\x00"),
    (200, [1]),
    (200, "text"),
    (200, {"errcode": "busy"}),
    (200, {"errcode": [40029]}),
    (200, {"errcode": False}),
    (200, {"errcode": 1.5}),
    (200, b"[" * 200_000 + b"]" * 200_000),
    (200, b'{"a": "' + b"x" * MAX_ANSWER_BYTES + b'"}'),
    (0, None),  # hang-up
])
def test_anything_but_a_json_object_with_an_integer_errcode_is_unavailable(wechat, status, body):
    wechat.answer_with(status, body)
    with pytest.raises(WeChatUnavailable):
        _call(wechat)


@pytest.mark.parametrize("errcode, expected", [(40029, 40029), ("40029", 40029), (-1, -1), ("-1", -1), (45011.0, 45011)])
def test_an_errcode_is_an_api_error_with_that_number(wechat, errcode, expected):
    wechat.answer_with(200, {"errcode": errcode, "errmsg": "no"})
    with pytest.raises(WeChatApiError) as raised:
        _call(wechat)
    assert raised.value.errcode == expected


@pytest.mark.parametrize("answer", [{"errcode": 0, "openid": "o"}, {"errcode": None, "openid": "o"}, {"openid": "o"}])
def test_errcode_zero_null_or_absent_is_success(wechat, answer):
    wechat.answer_with(200, answer)
    assert _call(wechat)["openid"] == "o"


def test_a_slow_wechat_is_unavailable_and_the_connection_pool_recovers(wechat):
    wechat.answer_with(200, {"openid": "o"}, delay_seconds=1.0)
    with pytest.raises(WeChatUnavailable):
        _call(wechat, timeout=0.2)
    wechat.answer_with(200, b'{"a": "' + b"x" * (MAX_ANSWER_BYTES + 10) + b'"}')
    with pytest.raises(WeChatUnavailable):
        _call(wechat)
    wechat.answer_with(200, {"openid": "o"})
    assert _call(wechat) == {"openid": "o"}  # nothing half-read is left on a pooled connection


def test_a_wechat_not_listening_is_unavailable():
    from local.processes import free_port

    with pytest.raises(WeChatUnavailable):
        http.call_json("GET", f"http://127.0.0.1:{free_port()}/sns/jscode2session", api="jscode2session", timeout=1)


# --- the open-API adapter refuses success answers it cannot use ------------------------------------

def _adapter(monkeypatch, answer: dict) -> open_api.WeChatOpenApi:
    monkeypatch.setattr(open_api, "call_json", lambda *args, **kwargs: answer)
    return open_api.WeChatOpenApi("http://127.0.0.1:9", "wx_appid", "secret")


@pytest.mark.parametrize("answer", [
    {}, {"openid": "o"}, {"session_key": "k"}, {"openid": None, "session_key": "k"}, {"openid": "", "session_key": "k"},
    {"openid": " ", "session_key": "k"}, {"openid": 12, "session_key": "k"}, {"openid": {"a": 1}, "session_key": "k"},
    {"openid": "o" * 129, "session_key": "k"}, {"openid": "o", "session_key": ["k"]},
    {"openid": "o", "session_key": "k", "unionid": 7},
])
def test_code_to_session_without_a_usable_openid_or_session_key_is_unavailable(monkeypatch, answer):
    with pytest.raises(WeChatUnavailable):
        _adapter(monkeypatch, answer).code_to_session("c")


@pytest.mark.parametrize("unionid, expected", [(None, None), ("", None), ("u1", "u1")])
def test_code_to_session_takes_an_absent_or_empty_unionid_as_none(monkeypatch, unionid, expected):
    session = _adapter(monkeypatch, {"openid": "o", "session_key": "k", "unionid": unionid}).code_to_session("c")
    assert (session.openid, session.session_key, session.unionid) == ("o", "k", expected)


@pytest.mark.parametrize("answer", [
    {}, {"access_token": "t"}, {"access_token": "t", "expires_in": "7200"}, {"access_token": "t", "expires_in": True},
    {"access_token": "t", "expires_in": 0}, {"access_token": "t", "expires_in": -5}, {"access_token": "", "expires_in": 7200},
    {"access_token": 5, "expires_in": 7200}, {"access_token": "t", "expires_in": 10 ** 12},
])
def test_a_stable_token_without_a_usable_token_or_lifetime_is_unavailable(monkeypatch, answer):
    with pytest.raises(WeChatUnavailable):
        _adapter(monkeypatch, answer).fetch_stable_token()


@pytest.mark.parametrize("answer", [
    {}, {"phone_info": None}, {"phone_info": "13800138000"}, {"phone_info": [1]}, {"phone_info": {}},
    {"phone_info": {"phoneNumber": "13800138000"}}, {"phone_info": {"phoneNumber": 1, "purePhoneNumber": 1}},
    {"phone_info": {"phoneNumber": "1", "purePhoneNumber": "1", "countryCode": {"x": 1}}},
])
def test_a_phone_number_answer_without_a_usable_phone_info_is_unavailable(monkeypatch, answer):
    with pytest.raises(WeChatUnavailable):
        _adapter(monkeypatch, answer).get_phone_number("token", "c")


def test_a_good_phone_number_answer_is_read(monkeypatch):
    phone = _adapter(monkeypatch, {"phone_info": {"phoneNumber": "13800138000", "purePhoneNumber": "13800138000",
                                                  "countryCode": "86"}}).get_phone_number("token", "c")
    assert (phone.pure_phone_number, phone.country_code) == ("13800138000", "86")


# --- what clients see --------------------------------------------------------------------------------

def _mapped(failure: Exception):
    with pytest.raises((Unauthorized, RateLimited, UpstreamError)) as raised:
        with wechat_failures_as_app_errors("login"):
            raise failure
    return raised.value


@pytest.mark.parametrize("errcode", sorted(INVALID_CODE_ERRCODES))
def test_a_refused_code_is_401_invalid_wechat_code(errcode):
    error = _mapped(WeChatApiError(errcode, "invalid code"))
    assert (error.status, error.code) == (401, "invalid_wechat_code")


@pytest.mark.parametrize("errcode", sorted(RATE_LIMIT_ERRCODES))
def test_a_rate_limit_is_429_with_retry_after(errcode):
    error = _mapped(WeChatApiError(errcode, "slow down"))
    assert (error.status, error.code, error.headers["Retry-After"]) == (429, "wechat_rate_limited", "60")


@pytest.mark.parametrize("errcode", [-1, 99999, *sorted(CREDENTIAL_ERRCODES)])
def test_a_system_error_an_unknown_errcode_or_a_credential_refusal_is_502_naming_the_errcode(errcode):
    error = _mapped(WeChatApiError(errcode, "no"))
    assert (error.status, error.code, error.details) == (502, "wechat_unavailable", [{"errcode": errcode}])


def test_no_answer_is_502_wechat_unavailable():
    error = _mapped(WeChatUnavailable("jscode2session: timeout"))
    assert (error.status, error.code, error.details) == (502, "wechat_unavailable", [])


def test_the_errcode_sets_do_not_overlap():
    assert not INVALID_CODE_ERRCODES & RATE_LIMIT_ERRCODES
    assert not INVALID_CODE_ERRCODES & CREDENTIAL_ERRCODES
    assert not RATE_LIMIT_ERRCODES & CREDENTIAL_ERRCODES


# --- bearer tokens of any shape ----------------------------------------------------------------------

@pytest.mark.parametrize("token", ["v1.a.\u00e9", "\u00e9", "v1.a b.c", "v1.a\x00.b", "v1." + "A" * 3000, "=v1.a.b"])
def test_a_token_that_is_not_a_bearer_token_is_invalid_before_anything_is_looked_up(token, monkeypatch):
    from chalicelib.domain.auth_tokens import InvalidToken
    from chalicelib.services import auth

    monkeypatch.setattr(auth.sessions, "get_session", lambda *_: pytest.fail("no lookup for a malformed token"))
    with pytest.raises(InvalidToken):
        auth.authenticate(token, "user")
