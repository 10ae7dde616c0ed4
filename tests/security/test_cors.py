"""CORS only for the origins in CORS_ALLOW_ORIGINS: the Origin is echoed for them, never for
another origin, never as `*`; the preflight (OPTIONS) answers every declared path the same way."""
from __future__ import annotations

import pytest

from chalicelib.api.http import ROUTES
from tests.api.helpers import call, log_in
from tests.conftest import reset_process_caches
from tests.security.routes import fill

SHOP = "https://shop.example.com"
OTHERS = ["https://evil.example.com", "https://shop.example.com.evil.example", "http://shop.example.com", "null", "*"]


@pytest.fixture
def shop_origin(client, monkeypatch):
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", f"{SHOP}, https://admin.example.com")
    reset_process_caches()
    return client


def _allow_origin(headers) -> str | None:
    return {name.lower(): value for name, value in headers.items()}.get("access-control-allow-origin")


def _preflight(client, path: str, origin: str | None):
    headers = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    if origin:
        headers["Origin"] = origin
    return client.http.request("OPTIONS", path, headers=headers)


def test_a_configured_origin_is_echoed_with_vary_on_answers_and_errors(shop_origin):
    for method, path, status in (("GET", "/v1/categories", 200), ("GET", "/v1/me", 401)):
        got, _, headers = call(shop_origin, method, path, headers={"Origin": SHOP})
        assert got == status
        assert _allow_origin(headers) == SHOP and headers["Vary"] == "Origin"


@pytest.mark.parametrize("origin", OTHERS)
def test_any_other_origin_gets_no_cors_header(shop_origin, origin):
    token, _ = log_in(shop_origin)
    for method, path, auth in (("GET", "/v1/categories", None), ("GET", "/v1/me", token), ("GET", "/v1/me", None)):
        _, _, headers = call(shop_origin, method, path, token=auth, headers={"Origin": origin})
        assert _allow_origin(headers) is None, (origin, path)


def test_without_configured_origins_no_origin_gets_a_cors_header(client):
    _, _, headers = call(client, "GET", "/v1/categories", headers={"Origin": SHOP})
    assert _allow_origin(headers) is None
    assert _allow_origin(_preflight(client, "/v1/orders", SHOP).headers) is None


def test_the_preflight_grants_a_configured_origin_the_path_methods_and_auth_header(shop_origin):
    response = _preflight(shop_origin, "/v1/orders", SHOP)
    assert response.status_code == 204
    assert _allow_origin(response.headers) == SHOP
    assert set(response.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "POST", "OPTIONS"}
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


@pytest.mark.parametrize("origin", OTHERS + [None])
def test_the_preflight_grants_nothing_to_another_origin(shop_origin, origin):
    response = _preflight(shop_origin, "/v1/orders", origin)
    assert response.status_code == 204
    assert not any(name.lower().startswith("access-control-") for name in response.headers)


def test_every_declared_path_answers_the_preflight_without_a_token(shop_origin):
    one_per_path = {spec.path: spec for spec in ROUTES}
    for path, spec in sorted(one_per_path.items()):
        response = _preflight(shop_origin, fill(spec), SHOP)
        assert response.status_code == 204, path
        assert _allow_origin(response.headers) == SHOP, path
        methods = {spec.method for spec in ROUTES if spec.path == path} | {"OPTIONS"}
        assert set(response.headers["Access-Control-Allow-Methods"].split(", ")) == methods, path
