"""Bearer tokens: missing, forged, expired, revoked, and the wrong role for a route."""
from __future__ import annotations

from datetime import timedelta

from chalicelib import clock
from chalicelib.domain.auth_tokens import TokenClaims, issue_token
from tests.api.helpers import assert_envelope, call, log_in
from tests.conftest import TEST_ENV


def _admin_token(client) -> str:
    status, body, _ = call(client, "POST", "/v1/admin/auth/login",
                           {"username": TEST_ENV["ADMIN_USERNAME"], "password": TEST_ENV["ADMIN_PASSWORD"]})
    assert status == 200, body
    return body["token"]


def _with_admin(client):
    from chalicelib.services.auth import ensure_first_admin

    assert ensure_first_admin() is True


def test_a_route_without_a_token_is_401(client):
    status, body, _ = call(client, "GET", "/v1/me")
    assert status == 401
    assert_envelope(body, "unauthorized")


def test_a_token_signed_with_another_secret_is_401(client):
    token, user = log_in(client)
    forged = issue_token(TokenClaims("sid", user["user_id"], "user", 0, 2_000_000_000), "x" * 40)
    status, body, _ = call(client, "GET", "/v1/me", token=forged)
    assert status == 401
    assert_envelope(body, "invalid_token")


def test_a_tampered_token_is_401(client):
    token, _ = log_in(client)
    version, payload, signature = token.split(".")
    tampered = f"{version}.{payload[:-2]}AA.{signature}"
    status, body, _ = call(client, "GET", "/v1/me", token=tampered)
    assert status == 401
    assert_envelope(body, "invalid_token")


def test_garbage_bearer_values_are_401(client):
    for value in ("nonsense", "v1..", "v1.a.b.c", "Bearer", ""):
        status, body, _ = call(client, "GET", "/v1/me", headers={"Authorization": f"Bearer {value}"})
        assert status == 401, value
        assert_envelope(body)


def test_an_expired_token_is_401_token_expired(client):
    token, _ = log_in(client)
    with clock.frozen_at(clock.now() + timedelta(days=2)):
        status, body, _ = call(client, "GET", "/v1/me", token=token)
    assert status == 401
    assert_envelope(body, "token_expired")


def test_logout_revokes_the_token_and_only_that_token(client):
    token, _ = log_in(client, "alice-1")
    other_token, _ = log_in(client, "alice-2")
    status, _, _ = call(client, "POST", "/v1/auth/logout", token=token)
    assert status == 204
    status, body, _ = call(client, "GET", "/v1/me", token=token)
    assert status == 401
    assert_envelope(body, "token_revoked")
    assert call(client, "GET", "/v1/me", token=other_token)[0] == 200


def test_a_user_token_on_an_admin_route_is_403(client):
    token, _ = log_in(client)
    status, body, _ = call(client, "POST", "/v1/admin/auth/logout", token=token)
    assert status == 403
    assert_envelope(body, "forbidden")


def test_an_admin_token_on_a_user_route_is_403(client):
    _with_admin(client)
    status, body, _ = call(client, "GET", "/v1/me", token=_admin_token(client))
    assert status == 403
    assert_envelope(body, "forbidden")


def test_admin_login_with_a_wrong_password_or_unknown_user_is_401(client):
    _with_admin(client)
    for username, password in ((TEST_ENV["ADMIN_USERNAME"], "wrong"), ("nobody", "whatever")):
        status, body, _ = call(client, "POST", "/v1/admin/auth/login", {"username": username, "password": password})
        assert status == 401
        assert_envelope(body, "invalid_credentials")


def test_first_admin_is_created_once_and_never_overwritten(client, monkeypatch):
    from chalicelib.services.auth import ensure_first_admin
    from tests.conftest import reset_process_caches

    assert ensure_first_admin() is True
    monkeypatch.setenv("ADMIN_PASSWORD", "a-different-password")
    reset_process_caches()
    assert ensure_first_admin() is False
    status, _, _ = call(client, "POST", "/v1/admin/auth/login",
                        {"username": TEST_ENV["ADMIN_USERNAME"], "password": TEST_ENV["ADMIN_PASSWORD"]})
    assert status == 200
