"""Points and member levels through the routes (issue 14 items 1, 2): sign in, see lots and the
ledger, spend points at checkout (locked in the order's transaction, back on cancel, pro rata on
refund, once), earn on completion, reach VIP by paying and see 9.5折 in the next preview."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import clock
from chalicelib.services import points as point_service
from chalicelib.storage import members as member_store
from chalicelib.storage import orders
from chalicelib.storage import points as point_store
from chalicelib.storage.points import PointsEntryRecord
from tests.api.helpers import admin_token, assert_envelope, call, log_in, sim_call

SHIPMENT = {"carrier": "顺丰速运", "tracking_no": "SF1234567890"}


@pytest.fixture
def shop(client, demo_store, wechat_sim, notify_bridge):
    token, _ = log_in(client)
    return {"user": token, "user_id": call(client, "GET", "/v1/me", token=token)[1]["user_id"],
            "admin": admin_token(client), "sim": wechat_sim}


def give_points(user_id: str, amount: int, ref: str = "test") -> None:
    """Points as a sign-in or a completed order would give them (one ledger entry)."""
    point_store.apply(point_service._earning(user_id, f"grant#{ref}", "grant", amount, ref, clock.now()))


def ledger_sum(user_id: str) -> int:
    return sum(int(entry.delta) for entry in PointsEntryRecord.query(user_id, consistent_read=True))


def my_points(client, shop) -> dict:
    status, body, _ = call(client, "GET", "/v1/me/points", token=shop["user"])
    assert status == 200, body
    assert body["balance"] == ledger_sum(shop["user_id"])  # the balance is the ledger's sum
    return body


def order_body(points: int | None = None, sku: str = "sku-cherry-1kg", quantity: int = 1) -> dict:
    body = {"items": [{"sku_id": sku, "quantity": quantity}], "delivery_method": "pickup", "store_id": "store-xuhui"}
    return {**body, **({"points": points} if points is not None else {})}


def place(client, shop, points: int | None = None, **kwargs) -> dict:
    status, order, _ = call(client, "POST", "/v1/orders", {**order_body(points, **kwargs),
                                                           "checkout_token": uuid.uuid4().hex}, token=shop["user"])
    assert status == 201, order
    return order


def pay(client, shop, order: dict) -> None:
    params = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=shop["user"])[1]
    sim_call(shop["sim"], "POST", "/__sim/pay/request-payment", {**params, "wait": True})
    assert orders.get_order(order["order_id"]).status == "paid"


def test_signing_in_gives_points_once_a_day_and_the_streak_grows_day_by_day(client, shop):
    with clock.frozen_at(datetime(2026, 12, 4, 1, 0, tzinfo=timezone.utc)) as advance:  # 09:00 in Shanghai
        token, _ = log_in(client, "carol-1")
        status, first, _ = call(client, "POST", "/v1/me/sign-in", token=token)
        assert status == 200 and first["signed_in_now"]
        assert (first["date"], first["points"], first["streak"], first["balance"]) == ("2026-12-04", 5, 1, 5)
        advance(timedelta(hours=14))  # 23:00 in Shanghai: still the same day
        status, again, _ = call(client, "POST", "/v1/me/sign-in", token=token)
        assert status == 200 and not again["signed_in_now"] and again["points"] == 5 and again["balance"] == 5
        advance(timedelta(hours=2))  # 01:00 the next day
        assert call(client, "POST", "/v1/me/sign-in", token=token)[1]["streak"] == 2
        view = call(client, "GET", "/v1/me/points", token=token)[1]
        assert view["balance"] == 10 and [entry["kind"] for entry in view["history"]] == ["sign_in", "sign_in"]
        assert view["lots"] == [{"points": 10, "expires_at": "2027-12-31T23:59:59+08:00"}]
        assert call(client, "GET", "/v1/me", token=token)[1]["points"] == 10


def test_the_preview_says_how_many_points_can_be_used_and_more_is_409(client, shop):
    give_points(shop["user_id"], 100_000)
    status, quote, _ = call(client, "POST", "/v1/checkout/preview", order_body(), token=shop["user"])
    assert status == 200 and quote["points_usable"] == 6_400  # half of the 128-yuan goods
    status, error, _ = call(client, "POST", "/v1/checkout/preview", order_body(points=6_401), token=shop["user"])
    assert status == 409
    assert_envelope(error, "insufficient_points")
    assert error["Details"][0]["points_usable"] == 6_400


def test_points_are_taken_with_the_order_and_come_back_once_when_it_is_cancelled(client, shop):
    give_points(shop["user_id"], 3_000)
    order = place(client, shop, points=2_000)
    assert order["points_used"] == 2_000 and order["payable_fen"] == 12_800 - 2_000
    assert {"kind": "points", "code": "points", "amount_fen": 2_000, "description": "2000积分抵扣"} in order["adjustments"]
    assert my_points(client, shop)["balance"] == 1_000
    for _ in range(2):
        assert call(client, "POST", f"/v1/orders/{order['order_id']}/cancel", token=shop["user"])[0] == 200
    view = my_points(client, shop)
    assert view["balance"] == 3_000
    assert [entry["kind"] for entry in view["history"]][:2] == ["return", "redeem"]


def test_an_unpaid_order_timing_out_gives_its_points_back(client, shop):
    from chalicelib.services import order_lifecycle

    give_points(shop["user_id"], 500)
    order = place(client, shop, points=500)
    with clock.frozen_at(orders.get_order(order["order_id"]).pay_deadline + timedelta(seconds=1)):
        assert order_lifecycle.close_if_overdue(order["order_id"]) == "closed"
        assert order_lifecycle.close_if_overdue(order["order_id"]) != "closed"
    assert my_points(client, shop)["balance"] == 500


def test_a_partial_refund_gives_back_its_share_of_the_points_and_a_full_one_the_rest(client, shop):
    shop["sim"].state.pay.refund_delay_ms = 50
    give_points(shop["user_id"], 4_000)
    order = place(client, shop, points=4_000, sku="sku-fuji-5", quantity=4)  # 159.60 yuan - 40 = 119.60 paid
    pay(client, shop, order)
    assert my_points(client, shop)["balance"] == 0
    request = call(client, "POST", f"/v1/orders/{order['order_id']}/after-sales",
                   {"kind": "refund", "reason": "少了一份", "lines": [{"sku_id": "sku-fuji-5", "quantity": 1}]},
                   token=shop["user"])[1]
    call(client, "POST", f"/v1/admin/after-sales/{request['request_id']}/approve", token=shop["admin"])
    _wait_until(lambda: orders.get_order(order["order_id"]).refunded_fen > 0)
    refunded = orders.get_order(order["order_id"]).refunded_fen
    assert my_points(client, shop)["balance"] == 4_000 * refunded // 11_960
    request = call(client, "POST", f"/v1/orders/{order['order_id']}/after-sales",
                   {"kind": "refund", "reason": "都不要了"}, token=shop["user"])[1]
    call(client, "POST", f"/v1/admin/after-sales/{request['request_id']}/approve", token=shop["admin"])
    _wait_until(lambda: orders.get_order(order["order_id"]).status == "refunded")
    assert my_points(client, shop)["balance"] == 4_000


def test_completing_an_order_earns_a_point_per_yuan_once(client, shop):
    order = place(client, shop)
    pay(client, shop, order)
    assert call(client, "POST", f"/v1/admin/orders/{order['order_id']}/ship", SHIPMENT, token=shop["admin"])[0] == 200
    for _ in range(2):
        status, done, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/confirm-receipt", token=shop["user"])
        assert status == 200 and done["status"] == "completed"
    view = my_points(client, shop)
    assert view["balance"] == 128 and [entry["kind"] for entry in view["history"]] == ["earn_order"]


def complete(client, shop, order: dict) -> None:
    assert call(client, "POST", f"/v1/admin/orders/{order['order_id']}/ship", SHIPMENT, token=shop["admin"])[0] == 200
    status, done, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/confirm-receipt", token=shop["user"])
    assert status == 200 and done["status"] == "completed"


def return_one_box(client, shop, order: dict) -> None:
    """A return of one box of cherries, approved and received by the merchant (then refunded)."""
    request = call(client, "POST", f"/v1/orders/{order['order_id']}/after-sales",
                   {"kind": "return", "reason": "坏了一盒", "lines": [{"sku_id": "sku-cherry-1kg", "quantity": 1}]},
                   token=shop["user"])[1]
    call(client, "POST", f"/v1/admin/after-sales/{request['request_id']}/approve", token=shop["admin"])
    call(client, "POST", f"/v1/admin/after-sales/{request['request_id']}/receive", token=shop["admin"])


def my_level(client, shop) -> str:
    return call(client, "GET", "/v1/me", token=shop["user"])[1]["member_level"]


def test_completing_enough_reaches_vip_and_the_next_preview_takes_its_discount(client, shop):
    status, rules, _ = call(client, "PATCH", "/v1/admin/member-levels",
                            {"levels": [{"level": "vip", "threshold_fen": 20_000, "discount_permille": 950}]},
                            token=shop["admin"])
    assert status == 200 and rules["version"] == 1
    assert {rule["level"]: rule["threshold_fen"] for rule in rules["levels"]} == {"vip": 20_000, "black_gold": 5_000_000}
    first = place(client, shop, sku="sku-cherry-1kg", quantity=2)  # 256 yuan
    assert not [a for a in first["adjustments"] if a["kind"] == "member_level"]
    pay(client, shop, first)
    assert my_level(client, shop) == "normal"  # paid is not yet kept: the spend counts on completion
    complete(client, shop, first)
    assert my_level(client, shop) == "vip" and member_store.get_spend(shop["user_id"]).lifetime_fen == 25_600
    quote = call(client, "POST", "/v1/checkout/preview", order_body(), token=shop["user"])[1]
    assert {"kind": "member_level", "code": "vip", "amount_fen": 640, "description": "会员9.5折"} in quote["adjustments"]
    assert quote["payable_fen"] == 12_800 - 640


def test_a_refund_before_completion_is_never_counted_and_one_after_takes_its_amount_back(client, shop):
    shop["sim"].state.pay.refund_delay_ms = 50
    call(client, "PATCH", "/v1/admin/member-levels",
         {"levels": [{"level": "vip", "threshold_fen": 20_000, "discount_permille": 950}]}, token=shop["admin"])
    order = place(client, shop, quantity=3)  # 384 yuan
    pay(client, shop, order)
    request = call(client, "POST", f"/v1/orders/{order['order_id']}/after-sales",
                   {"kind": "refund", "reason": "买多了", "lines": [{"sku_id": "sku-cherry-1kg", "quantity": 1}]},
                   token=shop["user"])[1]
    call(client, "POST", f"/v1/admin/after-sales/{request['request_id']}/approve", token=shop["admin"])
    _wait_until(lambda: orders.get_order(order["order_id"]).refunded_fen == 12_800)
    assert member_store.get_spend(shop["user_id"]).lifetime_fen == 0
    complete(client, shop, order)
    assert member_store.get_spend(shop["user_id"]).lifetime_fen == 25_600 and my_level(client, shop) == "vip"
    return_one_box(client, shop, order)
    _wait_until(lambda: orders.get_order(order["order_id"]).refunded_fen == 25_600)
    assert member_store.get_spend(shop["user_id"]).lifetime_fen == 12_800 and my_level(client, shop) == "normal"


@pytest.mark.parametrize("body", [
    {"levels": []},
    {"levels": [{"level": "gold", "threshold_fen": 1, "discount_permille": 900}]},
    {"levels": [{"level": "vip", "threshold_fen": 0, "discount_permille": 900}]},
    {"levels": [{"level": "vip", "threshold_fen": 100, "discount_permille": 1200}]},
    {"levels": [{"level": "vip", "threshold_fen": 100, "discount_permille": 900},
                {"level": "vip", "threshold_fen": 200, "discount_permille": 900}]},
    {"levels": [{"level": "vip", "threshold_fen": 100, "discount_permille": 800}]},  # deeper than 黑金's 8.8折
])
def test_bad_level_rules_are_400_and_change_nothing(client, shop, body):
    status, error, _ = call(client, "PATCH", "/v1/admin/member-levels", body, token=shop["admin"])
    assert status == 400, error
    assert call(client, "GET", "/v1/admin/member-levels", token=shop["admin"])[1]["version"] == 0


def test_member_levels_are_the_merchants_only(client, shop):
    assert call(client, "GET", "/v1/admin/member-levels", token=shop["user"])[0] in (401, 403)


def _wait_until(condition, seconds: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("the condition did not come true in time")


def test_a_return_after_completion_takes_back_the_points_the_order_earned_once(client, shop):
    shop["sim"].state.pay.refund_delay_ms = 50
    order = place(client, shop, quantity=2)  # 256 yuan
    pay(client, shop, order)
    call(client, "POST", f"/v1/admin/orders/{order['order_id']}/ship", SHIPMENT, token=shop["admin"])
    call(client, "POST", f"/v1/orders/{order['order_id']}/confirm-receipt", token=shop["user"])
    assert my_points(client, shop)["balance"] == 256
    return_one_box(client, shop, order)
    _wait_until(lambda: orders.get_order(order["order_id"]).refunded_fen == 12_800)
    _wait_until(lambda: my_points(client, shop)["balance"] == 128)
    view = my_points(client, shop)
    assert [entry["kind"] for entry in view["history"]][:2] == ["unearn", "earn_order"]
