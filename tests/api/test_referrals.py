"""Referral binding over HTTP (POST /v1/referrals/bind, the code in GET /v1/me) and the share
reward: the referrer's coupon when an invitee's order becomes paid, once per invitee (moto, the
WeChat simulator over HTTP for paying)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.domain import identity
from chalicelib.services import gifts
from chalicelib.storage import orders
from tests.api.helpers import admin_token, assert_envelope, call, log_in, place_pickup_order, sim_call
from tests.conftest import TEST_ENV

BIND = "/v1/referrals/bind"


@pytest.fixture(autouse=True)
def cold_caches():
    gifts.forget_cached_templates()
    yield
    gifts.forget_cached_templates()


def _code(client, token: str) -> str:
    status, me, _ = call(client, "GET", "/v1/me", token=token)
    assert status == 200, me
    return me["referral_code"]


def _bind(client, token: str, code: str):
    status, body, _ = call(client, "POST", BIND, {"referrer_code": code}, token=token)
    return status, body


# --- the binding ------------------------------------------------------------------------------

def test_every_user_has_a_stable_opaque_referral_code(client):
    token, user = log_in(client)
    code = _code(client, token)
    assert len(code) == 24 and code.isalnum() and code.isupper()
    assert user["user_id"][1:].upper() not in code
    assert user["referral_code"] == code  # the login's profile too
    assert _code(client, log_in(client, "alice-2")[0]) == code
    assert identity.user_id_for_referral_code(code) == user["user_id"]
    assert _code(client, log_in(client, "bob-1")[0]) != code


def test_the_first_binding_wins_and_never_changes(client):
    alice = _code(client, log_in(client, "alice-1")[0])
    carol = _code(client, log_in(client, "carol-1")[0])
    bob, _ = log_in(client, "bob-1")
    status, first = _bind(client, bob, alice)
    assert status == 200 and first["referrer_code"] == alice and first["bound_at"], first
    status, again = _bind(client, bob, alice.lower())  # the same referrer again: the same binding
    assert status == 200 and again == first
    status, body = _bind(client, bob, carol)
    assert status == 409
    assert_envelope(body, "already_bound")
    assert _bind(client, bob, alice) == (200, first)


def test_binding_to_oneself_is_refused(client):
    token, _ = log_in(client)
    status, body = _bind(client, token, _code(client, token))
    assert status == 409
    assert_envelope(body, "cannot_refer_self")


def test_an_unknown_or_malformed_code_is_404_and_a_bad_body_400(client):
    token, _ = log_in(client)
    nobody = identity.referral_code_for(identity.user_id_for(TEST_ENV["WECHAT_APPID"], "o-never-logged-in"))
    for code in (nobody, "ABC", "A" * 25, "ABCDEFGH1JKLMNOPQRSTUVWX"):  # "1" is not base32
        status, body = _bind(client, token, code)
        assert status == 404, code
        assert_envelope(body, "referrer_not_found")
    for body in ({}, {"referrer_code": ""}, {"referrer_code": "a-b"}, {"referrer_code": 12}):
        status, answer, _ = call(client, "POST", BIND, body, token=token)
        assert status == 400, (body, answer)
    assert call(client, "POST", BIND, {"referrer_code": nobody})[0] == 401


def test_only_a_new_user_may_bind_and_a_binding_outlives_the_window(client):
    alice = _code(client, log_in(client, "alice-1")[0])
    log_in(client, "bob-1")
    log_in(client, "carol-1")
    with clock.frozen_at(clock.now() + timedelta(hours=gifts.NEW_USER_HOURS, seconds=1)):
        bob, _ = log_in(client, "bob-2")  # the first token would not outlive the day
        status, body = _bind(client, bob, alice)
        assert status == 409
        assert_envelope(body, "not_a_new_user")
    carol, _ = log_in(client, "carol-2")
    status, first = _bind(client, carol, alice)
    assert status == 200, first
    with clock.frozen_at(clock.now() + timedelta(days=3)):
        carol, _ = log_in(client, "carol-3")
        assert _bind(client, carol, alice) == (200, first)  # answered as it is, whenever asked


# --- the share reward -------------------------------------------------------------------------

@pytest.fixture
def share_template(client, demo_store) -> str:
    status, body, _ = call(client, "POST", "/v1/admin/coupon-templates", {
        "name": "分享有礼5元", "kind": "no_threshold", "off_fen": 500, "valid_days": 30, "total": 100,
        "per_user_limit": 2, "channel": "share"}, token=admin_token(client))  # still 1 per invitee
    assert status == 201, body
    return body["template_id"]


def _pay(client, wechat_sim, token: str) -> str:
    order = place_pickup_order(client, token)
    status, params, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=token)
    assert status == 200, params
    sim_call(wechat_sim, "POST", "/__sim/pay/request-payment", {**params, "wait": True})
    assert orders.get_order(order["order_id"]).status == "paid"
    return order["order_id"]


def _share_coupons(client, token: str) -> list[dict]:
    status, body, _ = call(client, "GET", "/v1/me/coupons", token=token)
    assert status == 200, body
    return [coupon for coupon in body["items"] if coupon["channel"] == "share"]


def test_the_referrer_gets_one_share_coupon_per_invitee(client, wechat_sim, notify_bridge, share_template):
    alice, _ = log_in(client, "alice-1")
    code = _code(client, alice)
    bob, _ = log_in(client, "bob-1")
    assert _bind(client, bob, code)[0] == 200
    _pay(client, wechat_sim, bob)
    _pay(client, wechat_sim, bob)  # the same invitee's second paid order earns nothing more
    first = _share_coupons(client, alice)
    assert [coupon["template_id"] for coupon in first] == [share_template]
    assert _share_coupons(client, bob) == []  # the invitee gets nothing from it

    carol, _ = log_in(client, "carol-1")
    assert _bind(client, carol, code)[0] == 200
    _pay(client, wechat_sim, carol)
    assert len(_share_coupons(client, alice)) == 2


def test_no_reward_without_a_binding_or_for_an_order_placed_before_it(client, wechat_sim, notify_bridge,
                                                                       share_template):
    alice, _ = log_in(client, "alice-1")
    bob, _ = log_in(client, "bob-1")
    _pay(client, wechat_sim, bob)  # not bound: nobody to reward
    order = place_pickup_order(client, bob)
    assert _bind(client, bob, _code(client, alice))[0] == 200
    status, params, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=bob)
    assert status == 200, params
    sim_call(wechat_sim, "POST", "/__sim/pay/request-payment", {**params, "wait": True})
    assert orders.get_order(order["order_id"]).status == "paid"
    assert _share_coupons(client, alice) == []  # placed before the binding: the share did not bring it
    _pay(client, wechat_sim, bob)
    assert len(_share_coupons(client, alice)) == 1


def test_a_failing_reward_never_fails_the_payment(client, wechat_sim, notify_bridge, share_template, monkeypatch):
    alice, _ = log_in(client, "alice-1")
    bob, _ = log_in(client, "bob-1")
    assert _bind(client, bob, _code(client, alice))[0] == 200

    rewarded = []

    def broken(order, *args, **kwargs):
        rewarded.append(order.order_id)
        raise RuntimeError("storage down")

    monkeypatch.setattr(gifts, "reward_referrer", broken)
    _pay(client, wechat_sim, bob)  # asserts the order is paid
    assert len(rewarded) == 1 and _share_coupons(client, alice) == []
