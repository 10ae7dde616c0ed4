"""Coupons and full-reduction activities at checkout, and the coupons moving with their order:
placing locks them, cancel and timeout unlock them, payment uses them, a full refund gives back
those still valid (moto, the WeChat simulator over HTTP for paying and refunding)."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.services import activities, order_lifecycle
from chalicelib.storage import orders
from tests.api.helpers import admin_token, assert_envelope, call, log_in, sim_call

ADDRESS = {"name": "张三", "phone": "13800138000", "province": "上海市", "city": "上海市", "district": "徐汇区",
           "detail": "漕溪北路88号"}
# 128.00 + 69.90 + 49.90 = 247.80 yuan of fruit: reaches 满200.
FRUIT = [{"sku_id": "sku-cherry-1kg", "quantity": 1}, {"sku_id": "sku-fuji-10", "quantity": 1},
         {"sku_id": "sku-navel-10", "quantity": 1}]


def _at(**delta) -> str:
    return (clock.now() + timedelta(**delta)).isoformat()


def _template(client, admin, **fields) -> str:
    body = {"total": 100, "per_user_limit": 1, "channel": "claim", "valid_days": 30, **fields}
    status, answer, _ = call(client, "POST", "/v1/admin/coupon-templates", body, token=admin)
    assert status == 201, answer
    return answer["template_id"]


def _claim(client, token, template_id) -> str:
    status, coupon, _ = call(client, "POST", f"/v1/coupons/{template_id}/claim", token=token)
    assert status == 201, coupon
    return coupon["coupon_id"]


@pytest.fixture
def wallet(client, demo_store):
    """满200减20 for the whole store; in the buyer's wallet: 9折 on fruit capped at 30 yuan,
    满100减15, 5 yuan without threshold (its own stack group), and 10 yuan off durian only."""
    activities.forget_running()
    admin = admin_token(client)
    status, activity, _ = call(client, "POST", "/v1/admin/activities", {
        "kind": "full_reduction", "name": "满200减20", "tiers": [{"threshold_fen": 20000, "off_fen": 2000}],
        "starts_at": _at(hours=-1), "ends_at": _at(days=7)}, token=admin)
    assert status == 201, activity
    token, _ = log_in(client)
    address = call(client, "POST", "/v1/addresses", ADDRESS, token=token)[1]
    coupons = {
        "fruit_90": _claim(client, token, _template(client, admin, name="水果9折", kind="discount", rate_permille=900,
                                                    cap_fen=3000, scope={"category_ids": ["c-fruit"]})),
        "full_100_15": _claim(client, token, _template(client, admin, name="满100减15", kind="full_reduction",
                                                       threshold_fen=10000, off_fen=1500)),
        "five_off": _claim(client, token, _template(client, admin, name="无门槛5元", kind="no_threshold", off_fen=500,
                                                    stack_group="bonus")),
        "durian_10": _claim(client, token, _template(client, admin, name="榴莲减10", kind="no_threshold", off_fen=1000,
                                                     scope={"product_ids": ["p-durian"]}, stack_group="durian")),
    }
    yield {"token": token, "address_id": address["address_id"], "coupons": coupons, "admin": admin,
           "activity_id": activity["activity_id"]}
    activities.forget_running()


def _body(wallet, **extra) -> dict:
    return {"items": FRUIT, "address_id": wallet["address_id"], **extra}


def _order(client, wallet, **extra) -> tuple[int, dict]:
    status, order, _ = call(client, "POST", "/v1/orders", _body(wallet, checkout_token=uuid.uuid4().hex, **extra),
                            token=wallet["token"])
    return status, order


def _my_coupons(client, wallet, status: str) -> set[str]:
    answer = call(client, "GET", f"/v1/me/coupons?status={status}", token=wallet["token"])[1]
    return {coupon["coupon_id"] for coupon in answer["items"]}


def _assert_adds_up(quote: dict) -> None:
    assert quote["payable_fen"] == quote["goods_fen"] - quote["discount_fen"] + quote["delivery_fee_fen"]
    assert sum(line["discount_fen"] for line in quote["lines"]) == quote["discount_fen"]
    assert sum(adjustment["amount_fen"] for adjustment in quote["adjustments"]) == quote["discount_fen"]
    assert all(line["payable_fen"] >= 0 for line in quote["lines"])


def test_preview_picks_the_best_combination_and_says_why_each_other_coupon_does_not_apply(client, wallet):
    status, quote, _ = call(client, "POST", "/v1/checkout/preview", _body(wallet), token=wallet["token"])
    assert status == 200, quote
    ids = wallet["coupons"]
    outcome = {coupon["coupon_id"]: coupon for coupon in quote["coupons"]}
    assert {coupon_id for coupon_id, o in outcome.items() if o["applied"]} == {ids["fruit_90"], ids["five_off"]}
    assert outcome[ids["durian_10"]]["reason"] == "out_of_scope"
    # 满100减15 does not stack with the 满减 activity, nor with 水果9折 (the same stack group)
    assert outcome[ids["full_100_15"]]["reason"] == "does_not_stack"
    assert set(outcome[ids["full_100_15"]]["conflicts_with"]) == {wallet["activity_id"], ids["fruit_90"]}
    assert all(o["reason_text"] for o in outcome.values() if not o["applied"])
    kinds = [(adjustment["kind"], adjustment["code"]) for adjustment in quote["adjustments"]]
    assert kinds[0] == ("full_reduction", wallet["activity_id"])
    assert {code for kind, code in kinds if kind == "coupon"} == {ids["fruit_90"], ids["five_off"]}
    # 247.80 - 20 (满200减20) = 227.80; 9折 of it = 22.78 off; 5 off: 200.02 to pay, free delivery.
    assert (quote["goods_fen"], quote["discount_fen"], quote["payable_fen"]) == (24780, 2000 + 2278 + 500, 20002)
    _assert_adds_up(quote)


def test_an_explicit_choice_is_priced_as_chosen_and_an_illegal_one_is_refused_naming_the_coupons(client, wallet):
    ids = wallet["coupons"]
    status, quote, _ = call(client, "POST", "/v1/checkout/preview", _body(wallet, coupon_ids=[ids["five_off"]]),
                            token=wallet["token"])
    assert status == 200, quote
    assert [a["code"] for a in quote["adjustments"] if a["kind"] == "coupon"] == [ids["five_off"]]
    _assert_adds_up(quote)
    status, error, _ = call(client, "POST", "/v1/checkout/preview",
                            _body(wallet, coupon_ids=[ids["fruit_90"], ids["full_100_15"]]), token=wallet["token"])
    assert status == 409
    assert_envelope(error, "coupons_do_not_stack")
    assert {detail["coupon_id"] for detail in error["Details"]} >= {ids["fruit_90"], ids["full_100_15"]}
    status, error, _ = call(client, "POST", "/v1/checkout/preview", _body(wallet, coupon_ids=["cNoSuchCoupon"]),
                            token=wallet["token"])
    assert status == 404 and error["Code"] == "coupon_not_found"
    status, quote, _ = call(client, "POST", "/v1/checkout/preview", _body(wallet, coupon_ids=[]), token=wallet["token"])
    assert status == 200 and not any(a["kind"] == "coupon" for a in quote["adjustments"])


def test_placing_locks_the_coupons_and_cancelling_unlocks_them_once(client, wallet):
    ids = wallet["coupons"]
    status, order = _order(client, wallet)
    assert status == 201, order
    assert order["discount_fen"] == 4778 and order["payable_fen"] == 20002
    assert _my_coupons(client, wallet, "locked") == {ids["fruit_90"], ids["five_off"]}
    status, second = _order(client, wallet, coupon_ids=[ids["fruit_90"]])
    assert status == 409 and second["Code"] == "coupon_unavailable"
    status, cancelled, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/cancel", token=wallet["token"])
    assert status == 200 and cancelled["status"] == "cancelled"
    assert _my_coupons(client, wallet, "locked") == set()
    assert {ids["fruit_90"], ids["five_off"]} <= _my_coupons(client, wallet, "unused")
    status, again, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/cancel", token=wallet["token"])
    assert status == 200 and _my_coupons(client, wallet, "locked") == set()


def test_an_unpaid_order_timing_out_unlocks_its_coupons(client, wallet):
    status, order = _order(client, wallet, coupon_ids=[wallet["coupons"]["five_off"]])
    assert status == 201, order
    placed = orders.get_order(order["order_id"])
    with clock.frozen_at(placed.pay_deadline + timedelta(seconds=1)):
        assert order_lifecycle.sweep_overdue_orders().get("closed") == 1
        assert wallet["coupons"]["five_off"] in _my_coupons(client, wallet, "unused")


def test_paying_uses_the_coupons_and_a_full_refund_gives_back_those_still_valid(client, wallet, wechat_sim,
                                                                               notify_bridge):
    wechat_sim.state.pay.refund_delay_ms = None  # the refund stays PROCESSING until its notify below
    ids = wallet["coupons"]
    status, order = _order(client, wallet)
    assert status == 201, order
    status, params, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=wallet["token"])
    assert status == 200, params
    sim_call(wechat_sim, "POST", "/__sim/pay/request-payment", {**params, "wait": True})
    assert orders.get_order(order["order_id"]).status == "paid"
    assert _my_coupons(client, wallet, "used") == {ids["fruit_90"], ids["five_off"]}

    status, request, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/after-sales",
                              {"kind": "refund", "reason": "不想要了"}, token=wallet["token"])
    assert status == 201 and request["amount_fen"] == 20002, request
    status, approved, _ = call(client, "POST", f"/v1/admin/after-sales/{request['request_id']}/approve",
                               token=wallet["admin"])
    assert status == 200 and approved["refund_status"] == "processing", approved
    assert _my_coupons(client, wallet, "used") == {ids["fruit_90"], ids["five_off"]}  # until the money is back
    sim_call(wechat_sim, "POST", "/__sim/pay/refund-notify", {"out_refund_no": approved["out_refund_no"],
                                                               "status": "SUCCESS", "wait": True})
    assert orders.get_order(order["order_id"]).status == "refunded"
    assert {ids["fruit_90"], ids["five_off"]} <= _my_coupons(client, wallet, "unused")
    assert _my_coupons(client, wallet, "used") == set()


def test_a_wallet_that_disagrees_with_the_order_never_keeps_it_open_and_alerts_the_merchant(client, wallet):
    from chalicelib.storage import coupons

    coupon_id = wallet["coupons"]["five_off"]
    status, order = _order(client, wallet, coupon_ids=[coupon_id])
    assert status == 201, order
    user_id = orders.get_order(order["order_id"]).user_id
    coupons.release_coupons(user_id, [coupon_id], order["order_id"]).apply()  # records disagree now
    status, cancelled, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/cancel", token=wallet["token"])
    assert status == 200 and cancelled["status"] == "cancelled"
    alerts = call(client, "GET", "/v1/admin/alerts?kind=coupon_mismatch", token=wallet["admin"])[1]["items"]
    assert [alert["detail"]["order_id"] for alert in alerts] == [order["order_id"]]


def test_a_payment_is_applied_even_when_the_wallet_disagrees_with_the_order(client, wallet, wechat_sim,
                                                                            notify_bridge):
    from chalicelib.storage import coupons

    coupon_id = wallet["coupons"]["five_off"]
    status, order = _order(client, wallet, coupon_ids=[coupon_id])
    assert status == 201, order
    coupons.release_coupons(orders.get_order(order["order_id"]).user_id, [coupon_id], order["order_id"]).apply()
    status, params, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=wallet["token"])
    assert status == 200, params
    sim_call(wechat_sim, "POST", "/__sim/pay/request-payment", {**params, "wait": True})
    assert orders.get_order(order["order_id"]).status == "paid"
    alerts = call(client, "GET", "/v1/admin/alerts?kind=coupon_mismatch", token=wallet["admin"])[1]["items"]
    assert [alert["detail"]["order_id"] for alert in alerts] == [order["order_id"]]


def test_a_refund_wechat_paid_is_recorded_even_when_the_wallet_disagrees(client, wallet, wechat_sim, notify_bridge,
                                                                        monkeypatch):
    from chalicelib.services import order_coupons
    from chalicelib.storage import coupons

    wechat_sim.state.pay.refund_delay_ms = None
    coupon_id = wallet["coupons"]["five_off"]
    status, order = _order(client, wallet, coupon_ids=[coupon_id])
    assert status == 201, order
    params = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=wallet["token"])[1]
    sim_call(wechat_sim, "POST", "/__sim/pay/request-payment", {**params, "wait": True})
    request = call(client, "POST", f"/v1/orders/{order['order_id']}/after-sales",
                   {"kind": "refund", "reason": "不想要了"}, token=wallet["token"])[1]
    approved = call(client, "POST", f"/v1/admin/after-sales/{request['request_id']}/approve", token=wallet["admin"])[1]
    # The give-back's condition cannot hold (records disagree): e.g. the coupon is no longer `used`.
    user_id = orders.get_order(order["order_id"]).user_id
    monkeypatch.setattr(order_coupons, "give_back", lambda placed, now: [order_coupons.ExtraUpdate(
        coupons.release_coupons(user_id, [coupon_id], placed.order_id).as_request(),
        order_coupons.CouponStateChanged(coupon_id))])
    sim_call(wechat_sim, "POST", "/__sim/pay/refund-notify", {"out_refund_no": approved["out_refund_no"],
                                                               "status": "SUCCESS", "wait": True})
    assert orders.get_order(order["order_id"]).status == "refunded"
    alerts = call(client, "GET", "/v1/admin/alerts?kind=coupon_mismatch", token=wallet["admin"])[1]["items"]
    assert [alert["detail"]["order_id"] for alert in alerts] == [order["order_id"]]
