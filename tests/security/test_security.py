"""Every declared route (generated from ROUTES), on Chalice's test client over moto:
no token, a bad token (forged, tampered, expired, revoked), the wrong role and someone else's
resources are refused with the envelope; oversize and over-deep bodies too."""
from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.api.http import MAX_BODY_BYTES, MAX_JSON_DEPTH
from chalicelib.domain.auth_tokens import TokenClaims, issue_token
from chalicelib.storage import orders
from tests.api.helpers import admin_token, assert_envelope, call, log_in
from tests.flash.helpers import create_sale
from tests.security.routes import (ADDRESS, OWNED_IDS, SHARED_IDS, VALID_BODIES, admin_routes, authenticated, fill,
                                   label, path_ids, routes_with_a_body, user_routes_on_owned_ids)
from tests.storage.order_fixtures import pay


def _refusals(client, specs, token: str | None, expected_status: int, expected_code: str | None = None) -> list:
    """Call each route; the (route, status, body) of every answer that is not the expected refusal."""
    wrong = []
    for spec in specs:
        status, body, _ = call(client, spec.method, fill(spec), token=token)
        envelope_ok = isinstance(body, dict) and set(body) == {"Code", "Message", "Details"}
        if status != expected_status or not envelope_ok or (expected_code and body["Code"] != expected_code):
            wrong.append((label(spec), status, body))
    return wrong


def _for_role(role: str):
    return [spec for spec in authenticated() if spec.auth == role]


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _resign(token: str, secret: str) -> str:
    """The same claims (a live session) signed with another secret."""
    claims = _claims(token)
    return issue_token(TokenClaims(claims["sid"], claims["sub"], claims["role"], claims["iat"], claims["exp"]), secret)


@pytest.fixture
def tokens(client):
    return {"user": log_in(client, "salice-1")[0], "admin": admin_token(client)}


# ------------------------------------------------------------------------------- tokens


def test_the_generated_route_lists_cover_the_api():
    assert len(authenticated()) >= 40 and len(admin_routes()) >= 15 and len(user_routes_on_owned_ids()) >= 8
    assert {spec.auth for spec in admin_routes()} == {"admin"}


def test_every_authenticated_route_without_a_token_is_401(client):
    assert _refusals(client, authenticated(), None, 401, "unauthorized") == []


def test_every_authenticated_route_with_a_garbage_bearer_is_401(client):
    for garbage in ("nonsense", "v1..", "v1.e30.", "Bearer"):
        assert _refusals(client, authenticated(), garbage, 401, "invalid_token") == [], garbage


@pytest.mark.parametrize("role", ["user", "admin"])
def test_every_route_with_a_token_signed_by_another_secret_is_401(client, tokens, role):
    forged = _resign(tokens[role], "another-secret-of-at-least-32-characters")
    assert _refusals(client, _for_role(role), forged, 401, "invalid_token") == []


@pytest.mark.parametrize("role", ["user", "admin"])
def test_every_route_with_a_token_whose_claims_were_edited_is_401(client, tokens, role):
    version, payload, signature = tokens[role].split(".")
    claims = {**_claims(tokens[role]), "exp": 4_000_000_000}
    edited = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).rstrip(b"=").decode()
    for token in (f"{version}.{edited}.{signature}", f"{version}.{payload}."):
        assert _refusals(client, _for_role(role), token, 401, "invalid_token") == [], token


@pytest.mark.parametrize("role", ["user", "admin"])
def test_every_route_with_an_expired_token_is_401(client, tokens, role):
    with clock.frozen_at(clock.now() + timedelta(days=2)):
        assert _refusals(client, _for_role(role), tokens[role], 401, "token_expired") == []


@pytest.mark.parametrize("role, logout", [("user", "/v1/auth/logout"), ("admin", "/v1/admin/auth/logout")])
def test_every_route_with_a_revoked_token_is_401(client, tokens, role, logout):
    assert call(client, "POST", logout, token=tokens[role])[0] == 204
    assert _refusals(client, _for_role(role), tokens[role], 401, "token_revoked") == []


def test_every_admin_route_with_a_user_token_is_403(client, tokens):
    assert _refusals(client, admin_routes(), tokens["user"], 403, "forbidden") == []


def test_every_user_route_with_an_admin_token_is_403(client, tokens):
    assert _refusals(client, _for_role("user"), tokens["admin"], 403, "forbidden") == []


# ----------------------------------------------------------------- someone else's resources


@pytest.fixture
def alices_things(client, demo_store, tokens):
    """Alice's address, an unpaid order, and a paid order with an after-sales request."""
    token = tokens["user"]
    address = call(client, "POST", "/v1/addresses", ADDRESS, token=token)[1]

    def order():
        status, body, _ = call(client, "POST", "/v1/orders", {
            "items": [{"sku_id": "sku-fuji-5", "quantity": 1}], "address_id": address["address_id"],
            "checkout_token": uuid.uuid4().hex}, token=token)
        assert status == 201, body
        return body

    unpaid, paid = order(), order()
    pay(orders.get_order(paid["order_id"]))
    request = call(client, "POST", f"/v1/orders/{paid['order_id']}/after-sales", VALID_BODIES["AfterSaleBody"],
                   token=token)[1]
    sale_id = create_sale(quantity=5)
    ticket = call(client, "POST", f"/v1/flash-sales/{sale_id}/entries",
                  {"sku_id": "sku-giftcard-100", "quantity": 1, "request_id": uuid.uuid4().hex}, token=token)[1]
    return {"token": token, "address_id": [address["address_id"]], "order_id": [unpaid["order_id"], paid["order_id"]],
            "request_id": [request["request_id"]], "ticket_id": [ticket["ticket_id"]]}


def _alices_view(client, things) -> dict:
    token = things["token"]
    return {"orders": [call(client, "GET", f"/v1/orders/{order_id}", token=token)[1]["status"]
                       for order_id in things["order_id"]],
            "addresses": call(client, "GET", "/v1/addresses", token=token)[1],
            "request": call(client, "GET", f"/v1/after-sales/{things['request_id'][0]}", token=token)[1]}


def test_user_routes_name_no_ids_but_owned_and_catalog_ones():
    user_ids = {name for spec in authenticated() if spec.auth == "user" for name in path_ids(spec)}
    assert user_ids <= set(OWNED_IDS) | set(SHARED_IDS), user_ids
    assert all(spec.body.__name__ in VALID_BODIES for spec in user_routes_on_owned_ids() if spec.body)


def test_another_users_orders_addresses_and_requests_are_404_and_unchanged(client, alices_things):
    before = _alices_view(client, alices_things)
    bob = log_in(client, "sbob-1")[0]
    wrong = []
    for spec in user_routes_on_owned_ids():
        owned = [name for name in path_ids(spec) if name in OWNED_IDS]
        for value in alices_things[owned[0]]:
            body = VALID_BODIES.get(spec.body.__name__) if spec.body else None
            status, answer, _ = call(client, spec.method, fill(spec, {owned[0]: value}), body, token=bob)
            if status != 404 or set(answer or {}) != {"Code", "Message", "Details"}:
                wrong.append((label(spec), value, status, answer))
    assert wrong == []
    assert _alices_view(client, alices_things) == before


# ------------------------------------------------------------------------------- bodies


def _json_of_size(size: int) -> bytes:
    raw = b'{"x": "' + b"a" * (size - 9) + b'"}'
    assert len(raw) == size
    return raw


def _token_for(spec, tokens) -> str | None:
    return tokens.get(spec.auth) if spec.auth else None


def test_a_body_one_byte_over_one_mebibyte_is_413_on_every_route_with_a_body(client, tokens):
    raw = _json_of_size(MAX_BODY_BYTES + 1)
    for spec in routes_with_a_body():
        status, body, _ = call(client, spec.method, fill(spec), raw=raw, token=_token_for(spec, tokens))
        assert status == 413, label(spec)
        assert_envelope(body, "payload_too_large")


def test_a_body_of_exactly_one_mebibyte_is_not_refused_for_its_size(client):
    status, body, _ = call(client, "POST", "/v1/auth/login", raw=_json_of_size(MAX_BODY_BYTES))
    assert status == 400 and body["Code"] == "validation_error"


def test_json_nested_one_level_too_deep_is_400_on_every_route_with_a_body(client, tokens):
    depth = MAX_JSON_DEPTH + 1
    raw = '{"a": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    for spec in routes_with_a_body():
        status, body, _ = call(client, spec.method, fill(spec), raw=raw, token=_token_for(spec, tokens))
        assert status == 400, label(spec)
        assert_envelope(body, "invalid_json")
        assert body["Details"] == [{"field": "body", "message": "too deeply nested"}]


def test_json_nested_exactly_64_levels_is_not_refused_for_its_depth(client):
    raw = '{"code": "a-1", "x": ' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}"
    status, body, _ = call(client, "POST", "/v1/auth/login", raw=raw)
    assert status == 400 and body["Details"][0]["field"] == "x"  # the unknown field, not the depth
