"""Bad input gets a 4xx envelope naming the problem, and changes nothing."""
from __future__ import annotations

import pytest

from chalicelib.storage.sessions import SessionRecord
from chalicelib.storage.users import UserRecord
from tests.api.helpers import assert_envelope, call, log_in


def _nothing_written() -> bool:
    return not any(True for _ in UserRecord.scan()) and not any(True for _ in SessionRecord.scan())


@pytest.mark.parametrize("raw", [b"{", b"not json", b"[1, 2", b"\xff\xfe", b""])
def test_a_body_that_is_not_json_is_400_invalid_json(client, raw):
    status, body, _ = call(client, "POST", "/v1/auth/login", raw=raw)
    assert status == 400
    assert_envelope(body, "invalid_json")
    assert _nothing_written()


@pytest.mark.parametrize("payload, field", [
    ({}, "code"),
    ({"code": None}, "code"),
    ({"code": 12345}, "code"),
    ({"code": ""}, "code"),
    ({"code": "has spaces"}, "code"),
    ({"code": "x" * 129}, "code"),
    ({"code": "ok-1", "extra": 1}, "extra"),
    ([], "body"),
])
def test_missing_or_wrong_fields_are_400_naming_the_field(client, payload, field):
    status, body, _ = call(client, "POST", "/v1/auth/login", payload)
    assert status == 400
    assert_envelope(body, "validation_error")
    assert field in [detail["field"] for detail in body["Details"]], body
    assert _nothing_written()


def test_a_body_over_one_mebibyte_is_413(client):
    raw = '{"code": "' + "a" * (1024 * 1024) + '"}'
    status, body, _ = call(client, "POST", "/v1/auth/login", raw=raw)
    assert status == 413
    assert_envelope(body, "payload_too_large")
    assert _nothing_written()


@pytest.mark.parametrize("depth", [65, 5000])
def test_json_nested_deeper_than_64_levels_is_400(client, depth):
    raw = '{"code": "a-1", "x": ' + "[" * depth + "]" * depth + "}"
    status, body, _ = call(client, "POST", "/v1/auth/login", raw=raw)
    assert status == 400
    assert_envelope(body, "invalid_json")
    assert _nothing_written()


def test_null_means_the_same_as_absent_in_a_patch(client):
    token, _ = log_in(client)
    status, me, _ = call(client, "PATCH", "/v1/me", {"nickname": "小明"}, token=token)
    assert status == 200 and me["nickname"] == "小明"
    status, me, _ = call(client, "PATCH", "/v1/me", {"nickname": None, "avatar_url": None}, token=token)
    assert status == 200 and me["nickname"] == "小明"


def test_an_unknown_route_is_an_error_envelope_not_a_500(client):
    response = client.http.get("/v1/nothing-here")
    assert response.status_code in (403, 404)


# --- Content-Type: a body of a type the route does not read is 415 in the envelope -----------------

@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/xml", "application/octet-stream", "application/jsonp", "nonsense",
])
@pytest.mark.parametrize("path, payload", [
    ("/v1/auth/login", {"code": "alice-1"}),
    ("/v1/admin/auth/login", {"username": "admin", "password": "admin-test-password"}),
])
def test_a_json_route_sent_another_content_type_is_415_unsupported_media_type(client, path, payload, content_type):
    # Chalice's own check answered {"Code": "UnsupportedMediaType", "Message": ...}: no Details, not snake_case.
    status, body, _ = call(client, "POST", path, payload, headers={"Content-Type": content_type})
    assert status == 415, body
    assert_envelope(body, "unsupported_media_type")
    assert body["Details"][0]["field"] == "Content-Type"
    assert _nothing_written()


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8", " application/json ",
])
def test_json_with_any_parameters_or_case_is_accepted(client, content_type):
    status, body, _ = call(client, "POST", "/v1/auth/login", {"code": "alice-1"}, headers={"Content-Type": content_type})
    assert status == 200, body


def test_a_json_body_without_a_content_type_is_taken_as_json(client):
    response = client.http.post("/v1/auth/login", headers={}, body='{"code": "alice-1"}')
    assert response.status_code == 200, response.body


def test_routes_without_a_body_ignore_the_content_type(client):
    token, _ = log_in(client)
    status, body, _ = call(client, "GET", "/v1/me", token=token, headers={"Content-Type": "text/plain"})
    assert status == 200, body
    status, body, _ = call(client, "GET", "/v1/products", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body


def test_the_openapi_document_declares_415_on_every_route_with_a_json_body():
    import app  # noqa: F401  (registers every route)
    from chalicelib.api.openapi import build_document

    for path, methods in build_document()["paths"].items():
        for method, operation in methods.items():
            content = operation.get("requestBody", {}).get("content", {})
            if set(content) == {"application/json"} and "415" not in operation["responses"]:
                # the WeChat Pay v3 callback documents WeChat's own answers instead
                assert path == "/v1/payments/wechat/v3/notify", (method, path)
            elif "application/json" in content:
                assert operation["responses"]["415"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorEnvelope"}, (method, path)
