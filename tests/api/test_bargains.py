"""Bargains (砍价) over HTTP on moto: start, helpers' cuts (one each, never below the floor), the
sponsor's order at the price reached through the ordinary checkout (once, not after expiry),
new-users-only, the per-helper rate limit, and bad input."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.storage import bargains as bargain_store
from tests.api.helpers import admin_token, assert_envelope, call, log_in
from tests.api.test_activities import cold_cache  # noqa: F401  (autouse: a cold activity cache)
from tests.storage.order_fixtures import counters

SKU = "sku-cherry-1kg"  # 128.00 in the demo store


@pytest.fixture
def shop(client, demo_store):
    admin = admin_token(client)
    return {"admin": admin, "activity": create_activity(client, admin)}


def create_activity(client, admin, **overrides) -> dict:
    body = {"kind": "bargain", "name": "车厘子砍价", "sku_id": SKU, "floor_price_fen": 6800, "helpers_to_floor": 5,
            "window_minutes": 1440, "starts_at": clock.now().isoformat(),
            "ends_at": (clock.now() + timedelta(days=1)).isoformat(), **overrides}
    status, made, _ = call(client, "POST", "/v1/admin/activities", body, token=admin)
    assert status == 201, made
    return made


def start(client, token, activity_id) -> tuple[int, dict]:
    status, answer, _ = call(client, "POST", "/v1/bargains", {"activity_id": activity_id, "sku_id": SKU}, token=token)
    return status, answer


def cut(client, token, bargain_id) -> tuple[int, dict]:
    status, answer, _ = call(client, "POST", f"/v1/bargains/{bargain_id}/cuts", token=token)
    return status, answer


def order(client, token, bargain_id, **extra) -> tuple[int, dict]:
    status, answer, _ = call(client, "POST", "/v1/orders", {
        "items": [{"sku_id": SKU, "quantity": 1}], "delivery_method": "pickup", "store_id": "store-xuhui",
        "bargain_id": bargain_id, "checkout_token": uuid.uuid4().hex, **extra}, token=token)
    return status, answer


def test_helpers_cut_once_each_down_to_the_floor_and_no_further(client, shop):
    sponsor = log_in(client, "alice-1")[0]
    status, bargain = start(client, sponsor, shop["activity"]["activity_id"])
    assert (status, bargain["price_fen"], bargain["start_price_fen"], bargain["cuts"]) == (201, 12800, 12800, [])
    assert start(client, sponsor, shop["activity"]["activity_id"])[0] == 200  # one per sponsor and activity
    prices = []
    for n in range(5):
        helper = log_in(client, f"helper{n}-1")[0]
        status, after = cut(client, helper, bargain["bargain_id"])
        assert status == 201, after
        assert after["your_cut_fen"] > 0
        prices.append(after["price_fen"])
        assert cut(client, helper, bargain["bargain_id"])[0] == 200  # again: unchanged
    assert prices == sorted(prices, reverse=True) and prices[-1] == 6800
    final = call(client, "GET", f"/v1/bargains/{bargain['bargain_id']}", token=sponsor)[1]
    assert (final["at_floor"], final["cuts_count"], len(final["cuts"])) == (True, 5, 5)
    assert sum(c["amount_fen"] for c in final["cuts"]) == 12800 - 6800
    assert set(final["cuts"][0]) == {"nickname", "avatar_url", "amount_fen", "created_at"}
    status, answer = cut(client, log_in(client, "late-1")[0], bargain["bargain_id"])
    assert status == 409
    assert_envelope(answer, "bargain_at_floor")


def test_the_sponsor_buys_once_at_the_price_reached_through_the_checkout(client, shop):
    sponsor = log_in(client, "alice-1")[0]
    bargain = start(client, sponsor, shop["activity"]["activity_id"])[1]
    reached = cut(client, log_in(client, "bob-1")[0], bargain["bargain_id"])[1]["price_fen"]
    status, preview, _ = call(client, "POST", "/v1/checkout/preview", {
        "items": [{"sku_id": SKU, "quantity": 1}], "delivery_method": "pickup", "store_id": "store-xuhui",
        "bargain_id": bargain["bargain_id"]}, token=sponsor)
    assert (status, preview["payable_fen"]) == (200, reached)
    status, placed = order(client, sponsor, bargain["bargain_id"])
    assert (status, placed["payable_fen"], placed["adjustments"][0]["kind"]) == (201, reached, "bargain")
    status, answer = order(client, sponsor, bargain["bargain_id"])
    assert status == 409
    assert_envelope(answer, "bargain_used")
    status, answer = cut(client, log_in(client, "carol-1")[0], bargain["bargain_id"])
    assert status == 409  # the price is the order's now
    assert_envelope(answer, "bargain_ordered")
    call(client, "POST", f"/v1/orders/{placed['order_id']}/cancel", token=sponsor)
    assert bargain_store.get_bargain(bargain["bargain_id"]).order_id is None  # usable again until it expires
    assert order(client, sponsor, bargain["bargain_id"])[0] == 201
    assert counters(SKU)["reserved"] == 1


def test_an_expired_bargain_can_neither_be_cut_nor_bought(client, shop):
    sponsor, helper = log_in(client, "alice-1")[0], log_in(client, "bob-1")[0]
    activity = create_activity(client, shop["admin"], window_minutes=1)
    bargain = start(client, sponsor, activity["activity_id"])[1]
    with clock.frozen_at(clock.now() + timedelta(minutes=2)):
        status, answer = cut(client, helper, bargain["bargain_id"])
        assert status == 409
        assert_envelope(answer, "bargain_expired")
        status, answer = order(client, sponsor, bargain["bargain_id"])
        assert status == 409
        assert_envelope(answer, "bargain_expired")
        assert call(client, "GET", f"/v1/bargains/{bargain['bargain_id']}", token=helper)[1]["expired"] is True


def test_only_new_users_cut_when_the_activity_says_so(client, shop):
    helper = log_in(client, "old-1")[0]  # signed up before the bargain started
    activity = create_activity(client, shop["admin"], new_users_only=True)
    sponsor = log_in(client, "alice-1")[0]
    bargain = start(client, sponsor, activity["activity_id"])[1]
    status, answer = cut(client, helper, bargain["bargain_id"])
    assert status == 409
    assert_envelope(answer, "not_a_new_user")
    assert cut(client, log_in(client, "newcomer-1")[0], bargain["bargain_id"])[0] == 201


def test_the_sponsor_cannot_cut_and_a_helper_is_rate_limited(client, shop):
    sponsor = log_in(client, "alice-1")[0]
    bargain = start(client, sponsor, shop["activity"]["activity_id"])[1]
    status, answer = cut(client, sponsor, bargain["bargain_id"])
    assert status == 409
    assert_envelope(answer, "cannot_cut_own_bargain")
    helper = log_in(client, "busy-1")[0]
    outcomes = []
    for n in range(6):
        other = start(client, log_in(client, f"sponsor{n}-1")[0], shop["activity"]["activity_id"])[1]
        outcomes.append(cut(client, helper, other["bargain_id"]))
    assert [status for status, _ in outcomes] == [201] * 5 + [429]
    assert_envelope(outcomes[-1][1], "cut_rate_limited")


@pytest.mark.parametrize("body, status, code", [
    ({}, 400, "validation_error"),
    ({"activity_id": "act-nope", "sku_id": SKU}, 404, "activity_not_found"),
    ({"sku_id": "sku-fuji-5"}, 400, "sku_not_in_activity"),
    ({"extra": 1}, 400, "validation_error"),
])
def test_bad_bargain_requests_are_refused(client, shop, body, status, code):
    request = {"activity_id": shop["activity"]["activity_id"], "sku_id": SKU, **body} if body else {}
    answer = call(client, "POST", "/v1/bargains", request, token=log_in(client, "alice-1")[0])
    assert answer[0] == status, answer[1]
    assert_envelope(answer[1], code)


def test_bargain_ids_that_do_not_exist_or_are_someone_elses_are_404(client, shop):
    alice, bob = log_in(client, "alice-1")[0], log_in(client, "bob-1")[0]
    for method, path in (("GET", "/v1/bargains/b-nope"), ("POST", "/v1/bargains/b-nope/cuts")):
        status, answer, _ = call(client, method, path, token=alice)
        assert status == 404
        assert_envelope(answer, "bargain_not_found")
    bargain = start(client, alice, shop["activity"]["activity_id"])[1]
    status, answer = order(client, bob, bargain["bargain_id"])  # only its sponsor buys at its price
    assert status == 404
    assert_envelope(answer, "bargain_not_found")
    status, answer = order(client, alice, bargain["bargain_id"], items=[{"sku_id": SKU, "quantity": 2}])
    assert status == 400
    assert_envelope(answer, "offer_items_mismatch")
    assert call(client, "POST", "/v1/bargains", {"activity_id": "a", "sku_id": SKU})[0] == 401


def test_a_bargain_floor_at_or_above_the_price_is_400(client, shop):
    status, answer, _ = call(client, "POST", "/v1/admin/activities", {
        "kind": "bargain", "sku_id": SKU, "floor_price_fen": 12800, "helpers_to_floor": 5, "window_minutes": 60,
        "starts_at": clock.now().isoformat(), "ends_at": (clock.now() + timedelta(days=1)).isoformat()},
        token=shop["admin"])
    assert status == 400
    assert_envelope(answer, "validation_error")
