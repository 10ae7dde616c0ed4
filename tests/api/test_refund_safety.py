"""Refunds that must not pay twice or give goods away, paid and refunded through the WeChat
simulator (signed notifies over HTTP): shipping waits while a refund of unshipped goods is in
flight; WeChat's ABNORMAL blocks a second refund until a later SUCCESS or CLOSED settles it."""
from __future__ import annotations

import uuid

import pytest

from chalicelib.storage import orders, payments
from tests.api.helpers import admin_token, assert_envelope, call, log_in, sim_call
from tests.storage.order_fixtures import counters

ADDRESS = {"name": "张三", "phone": "13800138000", "province": "上海市", "city": "上海市", "district": "徐汇区",
           "detail": "漕溪北路88号"}
SHIPMENT = {"carrier": "顺丰速运", "tracking_no": "SF1234567890"}


@pytest.fixture
def shop(client, demo_store, wechat_sim, notify_bridge):
    wechat_sim.state.pay.refund_delay_ms = None  # refunds stay PROCESSING until the test finishes them
    token, _ = log_in(client)
    address = call(client, "POST", "/v1/addresses", ADDRESS, token=token)[1]
    return {"user": token, "address_id": address["address_id"], "admin": admin_token(client), "sim": wechat_sim}


def _paid(client, shop, quantity: int = 2) -> dict:
    order = call(client, "POST", "/v1/orders", {
        "items": [{"sku_id": "sku-fuji-5", "quantity": quantity}], "address_id": shop["address_id"],
        "checkout_token": uuid.uuid4().hex}, token=shop["user"])[1]
    params = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=shop["user"])[1]
    sim_call(shop["sim"], "POST", "/__sim/pay/request-payment", {**params, "wait": True})
    assert orders.get_order(order["order_id"]).status == "paid"
    return order


def _approved_refund(client, shop, order, lines=None) -> dict:
    body = {"kind": "refund", "reason": "不想要了", **({"lines": lines} if lines else {})}
    request = call(client, "POST", f"/v1/orders/{order['order_id']}/after-sales", body, token=shop["user"])[1]
    approved = call(client, "POST", f"/v1/admin/after-sales/{request['request_id']}/approve", token=shop["admin"])[1]
    assert (approved["status"], approved["refund_status"]) == ("refunding", "processing")
    return approved


def _wechat_finishes(shop, out_refund_no: str, status: str) -> None:
    sim_call(shop["sim"], "POST", "/__sim/pay/refund-notify", {"out_refund_no": out_refund_no, "status": status,
                                                               "wait": True})


def _ship(client, shop, order) -> tuple[int, dict]:
    status, body, _ = call(client, "POST", f"/v1/admin/orders/{order['order_id']}/ship", SHIPMENT,
                           token=shop["admin"])
    return status, body


def _request(client, shop, request_id) -> dict:
    return call(client, "GET", f"/v1/admin/after-sales/{request_id}", token=shop["admin"])[1]


def _alerts(client, shop, kind) -> list[dict]:
    return call(client, "GET", f"/v1/admin/alerts?kind={kind}", token=shop["admin"])[1]["items"]


def test_shipping_is_refused_while_a_refund_of_unshipped_goods_is_in_flight(client, shop):
    order = _paid(client, shop)
    approved = _approved_refund(client, shop, order, lines=[{"sku_id": "sku-fuji-5", "quantity": 1}])
    status, error = _ship(client, shop, order)
    assert status == 409, error
    assert_envelope(error, "refund_in_progress")
    assert error["Details"] == [{"out_refund_no": approved["out_refund_no"], "request_id": approved["request_id"],
                                 "refund_status": "processing"}]
    before = counters("sku-fuji-5")
    _wechat_finishes(shop, approved["out_refund_no"], "SUCCESS")
    after = counters("sku-fuji-5")
    assert (after["sold"], after["available"]) == (before["sold"] - 1, before["available"] + 1)  # never shipped
    status, shipped = _ship(client, shop, order)  # the other unit ships now
    assert status == 200 and shipped["status"] == "shipped"
    assert counters("sku-fuji-5") == after


def test_an_abnormal_refund_blocks_a_second_refund_is_alerted_and_a_later_success_applies_once(client, shop):
    stock_before = counters("sku-fuji-5")
    order = _paid(client, shop)
    approved = _approved_refund(client, shop, order)
    _wechat_finishes(shop, approved["out_refund_no"], "ABNORMAL")
    stuck = _request(client, shop, approved["request_id"])
    assert (stuck["status"], stuck["refund_status"]) == ("refunding", "abnormal")
    again = call(client, "POST", f"/v1/admin/after-sales/{approved['request_id']}/approve", token=shop["admin"])[1]
    assert again["out_refund_no"] == approved["out_refund_no"]  # no second refund: it could pay twice
    assert call(client, "POST", f"/v1/admin/after-sales/{approved['request_id']}/reject", {"reason": "x"},
                token=shop["admin"])[0] == 409
    assert len(sim_call(shop["sim"], "GET", f"/__sim/pay/transactions/{order['out_trade_no']}")["refunds"]) == 1
    assert [alert["detail"]["out_refund_no"] for alert in _alerts(client, shop, "refund_abnormal")] == [
        approved["out_refund_no"]]
    assert _ship(client, shop, order)[0] == 409  # the money may still go out: the goods stay
    assert orders.get_order(order["order_id"]).status == "paid"

    for _ in range(2):  # the merchant finished it by hand; WeChat says SUCCESS (and says it again)
        _wechat_finishes(shop, approved["out_refund_no"], "SUCCESS")
    assert _request(client, shop, approved["request_id"])["status"] == "refunded"
    view = call(client, "GET", f"/v1/admin/orders/{order['order_id']}", token=shop["admin"])[1]
    assert (view["status"], view["refunded_fen"]) == ("refunded", order["payable_fen"])
    assert [refund["status"] for refund in view["refunds"]] == ["success"]
    assert counters("sku-fuji-5") == stock_before  # both units back on sale, exactly once
    assert len(_alerts(client, shop, "refund_abnormal")) == 1


def test_an_abnormal_refund_that_wechat_then_closes_can_be_approved_again(client, shop):
    order = _paid(client, shop)
    approved = _approved_refund(client, shop, order)
    _wechat_finishes(shop, approved["out_refund_no"], "ABNORMAL")
    _wechat_finishes(shop, approved["out_refund_no"], "CLOSED")
    closed = _request(client, shop, approved["request_id"])
    assert closed["status"] == "approved" and "CLOSED" in closed["note"]
    second = call(client, "POST", f"/v1/admin/after-sales/{approved['request_id']}/approve", token=shop["admin"])[1]
    assert second["out_refund_no"] == f"AS{approved['request_id']}-2"
    _wechat_finishes(shop, second["out_refund_no"], "SUCCESS")
    view = call(client, "GET", f"/v1/admin/orders/{order['order_id']}", token=shop["admin"])[1]
    assert (view["status"], view["refunded_fen"]) == ("refunded", order["payable_fen"])
    assert sorted(refund["status"] for refund in view["refunds"]) == ["failed", "success"]
    assert payments.get_refund(approved["out_refund_no"]).status == "failed"
