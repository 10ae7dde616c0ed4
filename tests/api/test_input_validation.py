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
