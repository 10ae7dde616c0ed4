"""Group-buys (拼团) over HTTP on moto and the WeChat simulator: open, join, pay (places taken by
payments), succeed, the rule for a payment the group can no longer take, failure with automatic
refunds, shipping only after success, and bad input."""
from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.services import activities, group_settlement
from chalicelib.storage import group_buys as group_store
from chalicelib.storage import orders
from chalicelib.storage.payments import RefundRecord
from tests.api.helpers import admin_token, assert_envelope, call, json_log_lines, log_in, sim_call
from tests.api.test_activities import cold_cache  # noqa: F401  (autouse: a cold activity cache)
from tests.storage.order_fixtures import counters

SKU = "sku-navel-5"  # 29.90 in the demo store; 19.90 in a group


@pytest.fixture
def shop(client, demo_store, notify_bridge):
    admin = admin_token(client)
    return {"admin": admin, "activity": create_activity(client, admin)}


def create_activity(client, admin, **overrides) -> dict:
    body = {"kind": "group_buy", "name": "脐橙3人团", "sku_id": SKU, "price_fen": 1990, "group_size": 3,
            "window_minutes": 60, "per_user_limit": 2, "starts_at": clock.now().isoformat(),
            "ends_at": (clock.now() + timedelta(days=1)).isoformat(), **overrides}
    status, made, _ = call(client, "POST", "/v1/admin/activities", body, token=admin)
    assert status == 201, made
    return made


def start(client, token, activity_id, group_id=None, **extra):
    body = {"activity_id": activity_id, "sku_id": SKU, "delivery_method": "pickup", "store_id": "store-xuhui",
            **({"group_id": group_id} if group_id else {}), **extra}
    return call(client, "POST", "/v1/group-buys", body, token=token)


def opened(client, token, activity_id, group_id=None) -> dict:
    status, answer, _ = start(client, token, activity_id, group_id)
    assert status == 201, answer
    return answer


def pay(client, wechat_sim, token, order) -> None:
    status, params, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=token)
    assert status == 200, params
    sim_call(wechat_sim, "POST", "/__sim/pay/request-payment", {**params, "wait": True})


def group(client, token, group_id) -> dict:
    status, answer, _ = call(client, "GET", f"/v1/group-buys/{group_id}", token=token)
    assert status == 200, answer
    return answer


def wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_admin_creates_a_group_buy_and_it_is_listed_as_running(client, shop):
    made = shop["activity"]
    assert (made["kind"], made["sku_id"], made["price_fen"], made["group_size"], made["running"]) == \
        ("group_buy", SKU, 1990, 3, True)
    listed = call(client, "GET", "/v1/activities")[1]["items"]
    assert [(item["activity_id"], item["group_size"]) for item in listed] == [(made["activity_id"], 3)]
    status, changed, _ = call(client, "PATCH", f"/v1/admin/activities/{made['activity_id']}", {"price_fen": 1890},
                              token=shop["admin"])
    assert (status, changed["price_fen"]) == (200, 1890)


@pytest.mark.parametrize("overrides, status, code", [
    ({"group_size": 1}, 400, "validation_error"),
    ({"group_size": 11}, 400, "validation_error"),
    ({"price_fen": 0}, 400, "validation_error"),
    ({"price_fen": None, "tiers": [{"threshold_fen": 100, "off_fen": 10}]}, 400, "validation_error"),
    ({"tiers": [{"threshold_fen": 100, "off_fen": 10}]}, 400, "validation_error"),
    ({"window_minutes": "60"}, 400, "validation_error"),
    ({"sku_id": "sku-nope"}, 404, "sku_not_found"),
])
def test_a_bad_group_buy_activity_is_refused(client, shop, overrides, status, code):
    body = {"kind": "group_buy", "sku_id": SKU, "price_fen": 1990, "group_size": 3, "window_minutes": 60,
            "per_user_limit": 2, "starts_at": clock.now().isoformat(),
            "ends_at": (clock.now() + timedelta(days=1)).isoformat(), **overrides}
    answer = call(client, "POST", "/v1/admin/activities", {k: v for k, v in body.items() if v is not None},
                  token=shop["admin"])
    assert answer[0] == status, answer[1]
    assert_envelope(answer[1], code)


def test_changing_a_field_of_another_kind_is_400(client, shop):
    status, answer, _ = call(client, "PATCH", f"/v1/admin/activities/{shop['activity']['activity_id']}",
                             {"floor_price_fen": 100}, token=shop["admin"])
    assert status == 400
    assert_envelope(answer, "validation_error")


def test_three_paid_members_make_the_group_succeed_and_only_then_it_ships(client, wechat_sim, shop):
    activity_id = shop["activity"]["activity_id"]
    alice, bob, carol = (log_in(client, f"{name}-1")[0] for name in ("alice", "bob", "carol"))
    lead = opened(client, alice, activity_id)
    assert (lead["group"]["status"], lead["order"]["payable_fen"], lead["order"]["status"]) == \
        ("opening", 1990, "pending_payment")
    assert lead["order"]["adjustments"][0]["kind"] == "group_buy"
    group_id = lead["group"]["group_id"]
    pay(client, wechat_sim, alice, lead["order"])
    after_lead = group(client, bob, group_id)
    assert (after_lead["status"], after_lead["paid_count"], after_lead["places_left"]) == ("open", 1, 2)
    assert [member["leader"] for member in after_lead["members"]] == [True]
    second = opened(client, bob, activity_id, group_id)
    pay(client, wechat_sim, bob, second["order"])
    status, refused, _ = call(client, "POST", f"/v1/admin/orders/{lead['order']['order_id']}/ship",
                              {"carrier": "SF", "tracking_no": "SF100"}, token=shop["admin"])
    assert status == 409
    assert_envelope(refused, "group_not_succeeded")
    status, refused, _ = call(client, "POST", f"/v1/admin/orders/{lead['order']['order_id']}/shipments",
                              {"lines": [{"sku_id": SKU, "quantity": 1}], "carrier": "SF", "tracking_no": "SF100"},
                              token=shop["admin"])
    assert status == 409  # a package too
    assert_envelope(refused, "group_not_succeeded")
    # Nor a refund while the group may still fail (which refunds the whole payment by itself).
    status, refused, _ = call(client, "POST", f"/v1/orders/{lead['order']['order_id']}/after-sales",
                              {"kind": "refund", "reason": "不想要了"}, token=alice)
    assert status == 409
    assert_envelope(refused, "group_not_succeeded")
    third = opened(client, carol, activity_id, group_id)
    pay(client, wechat_sim, carol, third["order"])
    final = group(client, carol, group_id)
    assert (final["status"], final["paid_count"], final["places_left"], len(final["members"])) == ("succeeded", 3, 0, 3)
    assert set(final["members"][0]) == {"nickname", "avatar_url", "leader", "joined_at"}  # nothing personal beyond
    assert not any(orders.get_order(o["order"]["order_id"]).awaiting_group for o in (lead, second, third))
    status, shipped, _ = call(client, "POST", f"/v1/admin/orders/{lead['order']['order_id']}/ship",
                              {"carrier": "SF", "tracking_no": "SF100"}, token=shop["admin"])
    assert (status, shipped["status"]) == (200, "shipped")
    assert counters(SKU)["sold"] == 3


def test_joining_is_refused_when_the_group_cannot_take_the_member(client, wechat_sim, shop):
    activity_id = shop["activity"]["activity_id"]
    alice, bob = log_in(client, "alice-1")[0], log_in(client, "bob-1")[0]
    lead = opened(client, alice, activity_id)
    group_id = lead["group"]["group_id"]
    status, answer, _ = start(client, bob, activity_id, group_id)  # the leader has not paid: still opening
    assert status == 409
    assert_envelope(answer, "group_not_open")
    pay(client, wechat_sim, alice, lead["order"])
    assert start(client, bob, activity_id, group_id)[0] == 201
    status, answer, _ = start(client, bob, activity_id, group_id)
    assert status == 409
    assert_envelope(answer, "already_in_group")
    status, answer, _ = start(client, bob, activity_id)  # bob's second order in the activity: the limit is 2
    assert status == 201, answer
    status, answer, _ = start(client, bob, activity_id)
    assert status == 409
    assert_envelope(answer, "group_buy_limit_reached")


def test_cancelling_an_unpaid_group_order_frees_the_place_and_the_count(client, shop):
    activity_id = shop["activity"]["activity_id"]
    alice = log_in(client, "alice-1")[0]
    first, second = opened(client, alice, activity_id), opened(client, alice, activity_id)
    status, cancelled, _ = call(client, "POST", f"/v1/orders/{first['order']['order_id']}/cancel", token=alice)
    assert (status, cancelled["status"]) == (200, "cancelled")
    user_id = orders.get_order(first["order"]["order_id"]).user_id
    assert group_store.get_member(first["group"]["group_id"], user_id).status == "closed"
    assert start(client, alice, activity_id)[0] == 201  # the count came back: 2 orders again, not 3
    assert second["order"]["status"] == "pending_payment"
    assert counters(SKU)["reserved"] == 2


def test_a_replayed_checkout_token_answers_the_same_order(client, shop):
    activity_id = shop["activity"]["activity_id"]
    alice = log_in(client, "alice-1")[0]
    token = uuid.uuid4().hex
    first = start(client, alice, activity_id, checkout_token=token)
    again = start(client, alice, activity_id, checkout_token=token)
    assert (first[0], again[0]) == (201, 200)
    assert first[1]["order"]["order_id"] == again[1]["order"]["order_id"]
    assert counters(SKU)["reserved"] == 1


@pytest.mark.parametrize("body, status, code", [
    ({}, 400, "validation_error"),
    ({"activity_id": "act-nope", "sku_id": SKU}, 404, "activity_not_found"),
    ({"sku_id": "sku-fuji-5"}, 400, "sku_not_in_activity"),
    ({"group_id": "g-nope"}, 404, "group_not_found"),
    ({"group_id": "bad id!"}, 400, "validation_error"),
    ({"quantity": 2}, 400, "validation_error"),
    ({"delivery_method": "express"}, 400, "address_required"),
])
def test_bad_group_buy_requests_are_refused_and_change_nothing(client, shop, body, status, code):
    alice = log_in(client, "alice-1")[0]
    request = {"activity_id": shop["activity"]["activity_id"], "sku_id": SKU, "delivery_method": "pickup",
               "store_id": "store-xuhui", **body} if body else {}
    answer = call(client, "POST", "/v1/group-buys", request, token=alice)
    assert answer[0] == status, answer[1]
    assert_envelope(answer[1], code)
    assert counters(SKU)["reserved"] == 0


def test_group_routes_need_a_token_and_an_existing_group(client, shop):
    assert call(client, "POST", "/v1/group-buys", {"activity_id": "a", "sku_id": SKU})[0] == 401
    status, answer, _ = call(client, "GET", "/v1/group-buys/g-nope", token=log_in(client, "alice-1")[0])
    assert status == 404
    assert_envelope(answer, "group_not_found")


def test_a_paused_activity_takes_no_new_groups(client, shop):
    call(client, "PATCH", f"/v1/admin/activities/{shop['activity']['activity_id']}", {"status": "paused"},
         token=shop["admin"])
    status, answer, _ = start(client, log_in(client, "alice-1")[0], shop["activity"]["activity_id"])
    assert status == 409
    assert_envelope(answer, "activity_not_running")


def test_a_payment_for_a_full_group_leads_a_new_group(client, wechat_sim, shop):
    activity_id = shop["activity"]["activity_id"]
    alice, bob, carol, dave = (log_in(client, f"{name}-1")[0] for name in ("alice", "bob", "carol", "dave"))
    lead = opened(client, alice, activity_id)
    pay(client, wechat_sim, alice, lead["order"])
    group_id = lead["group"]["group_id"]
    joiners = [opened(client, token, activity_id, group_id) for token in (bob, carol, dave)]  # 3 orders, 2 places
    for token, joined in zip((bob, carol, dave), joiners):
        pay(client, wechat_sim, token, joined["order"])
    assert group(client, alice, group_id)["status"] == "succeeded"
    late = orders.get_order(joiners[2]["order"]["order_id"])
    assert late.status == "paid" and late.offer["id"] != group_id and late.awaiting_group
    reopened = group(client, dave, late.offer["id"])
    assert (reopened["status"], reopened["paid_count"], reopened["members"][0]["leader"]) == ("open", 1, True)
    assert counters(SKU)["sold"] == 4


def test_a_group_that_expires_unfilled_refunds_its_paid_members_once_and_closes_the_unpaid(client, wechat_sim, shop):
    # A one-minute window: the clock moves on 2 minutes, within WeChat Pay's 5-minute signature skew.
    activity_id = create_activity(client, shop["admin"], window_minutes=1)["activity_id"]
    alice, bob = log_in(client, "alice-1")[0], log_in(client, "bob-1")[0]
    lead = opened(client, alice, activity_id)
    pay(client, wechat_sim, alice, lead["order"])
    unpaid = opened(client, bob, activity_id, lead["group"]["group_id"])
    group_id = lead["group"]["group_id"]
    expires = orders.get_order(lead["order"]["order_id"]).created_at + timedelta(minutes=2)
    with clock.frozen_at(expires), json_log_lines() as lines:
        # By itself: the scheduled sweep (as EventBridge runs it), then the group's timer message.
        event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                                resources=[])
        client.lambda_.invoke("sweep_group_buys", event)
        assert group_settlement.settle_if_due(group_id) == "failed"  # the timer arriving after the sweep
    assert [line.get("failed") for line in lines if line.get("message") == "group-buy sweep"] == [1]
    wait_until(lambda: orders.get_order(lead["order"]["order_id"]).status == "refunded")
    assert [r.out_refund_no for r in RefundRecord.scan()] == [f"GF{lead['order']['order_id']}"]
    assert orders.get_order(unpaid["order"]["order_id"]).status == "cancelled"
    assert group(client, alice, group_id)["status"] == "failed"
    assert counters(SKU) == {**counters(SKU), "reserved": 0, "sold": 0}
    assert group_store.due_group_ids(expires + timedelta(hours=1), 10) == []


def test_the_demo_store_runs_a_three_person_group_buy_and_a_bargain(client, aws, wechat_sim):
    from local.seed import seed_demo_store

    seed_demo_store()
    activities.forget_running()
    kinds = {item["activity_id"]: item["kind"] for item in call(client, "GET", "/v1/activities")[1]["items"]}
    assert kinds == {"act-demo-full-reduction": "full_reduction", "act-demo-group-buy": "group_buy",
                     "act-demo-bargain": "bargain"}
    alice = log_in(client, "alice-1")[0]
    lead = opened(client, alice, "act-demo-group-buy")
    assert (lead["group"]["group_size"], lead["order"]["payable_fen"]) == (3, 1990)
    status, bargain, _ = call(client, "POST", "/v1/bargains", {"activity_id": "act-demo-bargain",
                                                               "sku_id": "sku-cherry-1kg"}, token=alice)
    assert (status, bargain["start_price_fen"], bargain["floor_price_fen"]) == (201, 12800, 6800)


def test_a_payment_for_a_closed_group_order_is_refunded_not_revived(client, wechat_sim, shop):
    alice = log_in(client, "alice-1")[0]
    lead = opened(client, alice, shop["activity"]["activity_id"])
    order_id = lead["order"]["order_id"]
    call(client, "POST", f"/v1/orders/{order_id}/pay", token=alice)
    assert call(client, "POST", f"/v1/orders/{order_id}/cancel", token=alice)[1]["status"] == "cancelled"
    sim_call(wechat_sim, "POST", "/__sim/pay/pay", {"out_trade_no": lead["order"]["out_trade_no"], "force": True,
                                                    "wait": True})
    view = call(client, "GET", f"/v1/admin/orders/{order_id}", token=shop["admin"])[1]
    assert view["status"] == "cancelled"
    assert [r["amount_fen"] for r in view["refunds"]] == [1990]
    assert group_store.get_group(lead["group"]["group_id"]).paid_count == 0
    assert counters(SKU)["sold"] == 0
