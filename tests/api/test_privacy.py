"""PIPL (issue 14 part 6): the consent ledger, require_consent, and the data export."""
from __future__ import annotations

import json

import pytest

from chalicelib.errors import AppError
from chalicelib.services import privacy
from chalicelib.storage import users
from chalicelib.storage.consents import ConsentRecord
from chalicelib.storage.users import UserRecord
from tests.api.helpers import admin_token, assert_envelope, call, log_in
from tests.api.privacy_helpers import ADDRESS, fill_every_store

SECTIONS = {"profile", "consents", "addresses", "orders", "coupons", "reviews", "favorites", "history", "after_sales",
            "points", "commissions"}


def _ledger(user_id: str) -> list[ConsentRecord]:
    return list(ConsentRecord.query(user_id, consistent_read=True))


# ------------------------------------------------------------------------------ consents


def test_consents_are_appended_to_a_history_not_overwritten(client):
    token, user = log_in(client)
    for version, granted in (("2024-01", True), ("2025-03", True), ("2025-03", False)):
        status, entry, _ = call(client, "POST", "/v1/me/consents", {"version": version, "granted": granted,
                                                                   "client": "mp-1.4.0"}, token=token)
        assert status == 201, entry
        assert entry["version"] == version and entry["granted"] is granted and entry["source"] == "consents"
    status, page, _ = call(client, "GET", "/v1/me/consents", token=token)
    assert status == 200
    assert [(item["version"], item["granted"]) for item in page["items"]] == [
        ("2025-03", False), ("2025-03", True), ("2024-01", True)]  # newest first
    assert page["current_version"] is None  # withdrawn
    assert len(_ledger(user["user_id"])) == 3
    record = UserRecord.get(user["user_id"], consistent_read=True)
    assert record.privacy_consent_version is None and record.privacy_consented_at is None


def test_a_grant_sets_the_current_consent_in_the_same_write(client):
    token, user = log_in(client)
    assert call(client, "POST", "/v1/me/consents", {"version": "2025-03", "granted": True}, token=token)[0] == 201
    assert call(client, "GET", "/v1/me", token=token)[1]["privacy_consent_version"] == "2025-03"
    assert call(client, "GET", "/v1/me/consents", token=token)[1]["current_version"] == "2025-03"


def test_the_consent_history_pages_with_a_signed_cursor(client):
    token, _ = log_in(client)
    for n in range(3):
        call(client, "POST", "/v1/me/consents", {"version": f"v{n}", "granted": True}, token=token)
    first = call(client, "GET", "/v1/me/consents?limit=2", token=token)[1]
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = call(client, "GET", f"/v1/me/consents?limit=2&cursor={first['next_cursor']}", token=token)[1]
    assert [item["version"] for item in second["items"]] == ["v0"]
    status, body, _ = call(client, "GET", "/v1/me/consents?cursor=forged", token=token)
    assert status == 400 and body["Code"] == "invalid_cursor"


@pytest.mark.parametrize("body", [
    {"version": "2025 03", "granted": True},
    {"version": "", "granted": True},
    {"version": "v" * 33, "granted": True},
    {"version": "2025-03", "granted": "yes"},
    {"version": "2025-03"},
    {"version": "2025-03", "granted": True, "extra": 1},
    {"version": "2025-03", "granted": True, "client": "<script>"},
    [],
])
def test_bad_consent_bodies_are_400_and_change_nothing(client, body):
    token, user = log_in(client)
    status, reply, _ = call(client, "POST", "/v1/me/consents", body, token=token)
    assert status == 400
    assert_envelope(reply, "validation_error")
    assert _ledger(user["user_id"]) == []
    assert UserRecord.get(user["user_id"], consistent_read=True).privacy_consent_version is None


def test_privacy_routes_need_a_user_token(client):
    for method, path in (("GET", "/v1/me/consents"), ("POST", "/v1/me/consents"), ("POST", "/v1/me/data-export"),
                         ("DELETE", "/v1/me")):
        status, body, _ = call(client, method, path, {"version": "1", "granted": True})
        assert status == 401, (method, path)
        assert_envelope(body)
    admin = admin_token(client)
    assert call(client, "POST", "/v1/me/data-export", token=admin)[0] == 403


def test_require_consent_is_403_consent_required_until_the_user_agrees(client):
    token, user = log_in(client)
    with pytest.raises(AppError) as refused:
        privacy.require_consent(users.get_user(user["user_id"]))
    assert refused.value.status == 403 and refused.value.code == "consent_required"
    call(client, "POST", "/v1/me/consents", {"version": "2025-03", "granted": True}, token=token)
    privacy.require_consent(users.get_user(user["user_id"]))
    with pytest.raises(AppError):
        privacy.require_consent(users.get_user(user["user_id"]), version="2026-01")


# ------------------------------------------------------------------------------ export


def test_the_export_has_every_section_and_nothing_of_another_user(client, demo_store):
    admin = admin_token(client)
    token, alice = log_in(client, "alice-1")
    mine = fill_every_store(client, token, admin)
    bob_token, bob = log_in(client, "bob-1")
    bob_address = call(client, "POST", "/v1/addresses", {**ADDRESS, "name": "李四", "phone": "13900139000"},
                       token=bob_token)[1]
    bob_order = fill_every_store(client, bob_token, admin)

    status, export, _ = call(client, "POST", "/v1/me/data-export", token=token)
    assert status == 200, export
    assert SECTIONS <= set(export) and export["truncated"] == []
    assert export["points"]["balance"] == export["profile"]["points"] > 0  # the completed order earned some
    assert "earn_order" in {entry["kind"] for entry in export["points"]["history"]}
    assert export["commissions"] == {"frozen_fen": 0, "available_fen": 0, "pending_fen": 0, "withdrawn_fen": 0,
                                     "clawed_back_fen": 0, "history": []}  # not a distributor: an empty account
    assert export["profile"]["user_id"] == alice["user_id"] and export["profile"]["nickname"] == "张三丰"
    assert export["profile"]["birthday"] == "1990-05-01"
    assert [c["version"] for c in export["consents"]] == ["2024-01"]
    assert [a["address_id"] for a in export["addresses"]] == [mine["address_id"]]
    assert export["addresses"][0]["phone"] == "13800138000"  # their own data, in full
    (order,) = export["orders"]
    assert order["order_id"] == mine["order_id"] and order["status"] == "completed"
    assert order["payments"] and order["payments"][0]["amount_fen"] == order["payable_fen"]
    assert order["shipment"]["tracking_no"] == "SF1234567890"
    assert [r["order_id"] for r in export["reviews"]] == [mine["order_id"]]
    assert [f["product_id"] for f in export["favorites"]] == ["p-fuji"]
    assert [v["product_id"] for v in export["history"]] == ["p-fuji"]
    assert export["coupons"] == [] and export["after_sales"] == []

    text = json.dumps(export, ensure_ascii=False)
    for foreign in (bob["user_id"], bob_address["address_id"], bob_order["order_id"], "李四", "13900139000"):
        assert foreign not in text
    record = UserRecord.get(alice["user_id"])
    for secret in (record.openid, "session_key", "prepay", "request_fingerprint", "openid"):
        assert secret not in text


def test_the_export_lists_after_sales_requests(client, demo_store):
    from tests.api.helpers import place_pickup_order
    from chalicelib.storage import orders
    from tests.storage.order_fixtures import pay

    token, _ = log_in(client)
    order = place_pickup_order(client, token)
    pay(orders.get_order(order["order_id"]))
    status, request, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/after-sales",
                              {"kind": "refund", "reason": "不想要了"}, token=token)
    assert status == 201, request
    export = call(client, "POST", "/v1/me/data-export", token=token)[1]
    assert [(r["request_id"], r["reason"]) for r in export["after_sales"]] == [(request["request_id"], "不想要了")]


def test_exports_are_limited_to_three_a_day(client):
    token, _ = log_in(client)
    for _ in range(3):
        assert call(client, "POST", "/v1/me/data-export", token=token)[0] == 200
    status, body, headers = call(client, "POST", "/v1/me/data-export", token=token)
    assert status == 429
    assert_envelope(body, "export_rate_limited")
    assert int(headers["Retry-After"]) > 3600
    other, _ = log_in(client, "bob-1")
    assert call(client, "POST", "/v1/me/data-export", token=other)[0] == 200  # per user


def test_the_points_section_is_an_appendable_builder(client, monkeypatch):
    """The points ledger adds its section by appending a builder named "points"."""
    token, _ = log_in(client)
    monkeypatch.setattr(privacy, "EXPORT_SECTIONS",
                        [*privacy.EXPORT_SECTIONS, ("points", lambda context: {"balance": context.user.points})])
    export = call(client, "POST", "/v1/me/data-export", token=token)[1]
    assert export["points"] == {"balance": 0}
