"""Paying through the WeChat simulator: prepay, wx.requestPayment, signed notifies over HTTP
into the app (through `notify_bridge`), duplicates, forgeries, late payments, v2 and v3."""
from __future__ import annotations

import uuid

import pytest

from chalicelib.storage import orders
from chalicelib.storage import payments as payment_store
from chalicelib.storage.payments import PaymentRecord
from tests.api.helpers import admin_token, assert_envelope, call, log_in, sim_call
from tests.storage.order_fixtures import counters, recorded_payments


@pytest.fixture
def shopper(client, demo_store, notify_bridge):
    token, _ = log_in(client)
    return token


def _order(client, token, sku="sku-durian-3kg", quantity=2) -> dict:
    status, order, _ = call(client, "POST", "/v1/orders", {
        "items": [{"sku_id": sku, "quantity": quantity}], "delivery_method": "pickup", "store_id": "store-xuhui",
        "checkout_token": uuid.uuid4().hex}, token=token)
    assert status == 201, order
    return order


def _pay(client, wechat_sim, token, order, **knobs) -> dict:
    status, params, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=token)
    assert status == 200, params
    assert all(isinstance(value, str) for value in params.values())
    return sim_call(wechat_sim, "POST", "/__sim/pay/request-payment", {**params, "wait": True, **knobs})


def _attempts(wechat_sim, order) -> list[int]:
    items = sim_call(wechat_sim, "GET", f"/__sim/pay/notifies?out_trade_no={order['out_trade_no']}")["items"]
    return [attempt.get("status") for item in items for attempt in item.get("attempts", [])]


def test_paying_through_wechat_marks_the_order_paid_and_sells_its_stock(client, wechat_sim, shopper):
    order = _order(client, shopper)
    result = _pay(client, wechat_sim, shopper, order)
    assert result["transaction"]["api"] == "v3"
    assert call(client, "GET", f"/v1/orders/{order['order_id']}", token=shopper)[1]["status"] == "paid"
    assert counters("sku-durian-3kg") == {"available": 18, "allocated": 0, "reserved": 0, "sold": 2, "stock_in": 20}
    payment = recorded_payments(order["order_id"])
    assert [p.amount_fen for p in payment] == [order["payable_fen"]]


def test_the_prepay_is_reused_while_the_order_is_unpaid(client, wechat_sim, shopper):
    order = _order(client, shopper)
    first = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=shopper)[1]
    second = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=shopper)[1]
    assert first["package"] == second["package"]


def test_duplicate_notifies_change_the_order_once(client, wechat_sim, shopper):
    order = _order(client, shopper)
    _pay(client, wechat_sim, shopper, order, duplicate=5, concurrent=True)
    assert PaymentRecord.count() == 1
    assert counters("sku-durian-3kg")["sold"] == 2


@pytest.mark.parametrize("corrupt", ["signature", "ciphertext", "timestamp", "amount", "mchid", "appid"])
def test_a_forged_stale_or_mismatching_notify_is_refused_and_changes_nothing(client, wechat_sim, shopper, corrupt):
    order = _order(client, shopper)
    _pay(client, wechat_sim, shopper, order, corrupt=corrupt, max_attempts=1)
    assert orders.get_order(order["order_id"]).status == "pending_payment"
    assert PaymentRecord.count() == 0
    assert _attempts(wechat_sim, order) and all(status >= 400 for status in _attempts(wechat_sim, order))


def test_a_late_payment_revives_a_closed_order_when_stock_allows(client, wechat_sim, shopper):
    order = _order(client, shopper)
    params = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=shopper)[1]
    # The user cancels (WeChat's order gets closed first) ... and yet a payment arrives.
    assert call(client, "POST", f"/v1/orders/{order['order_id']}/cancel", token=shopper)[1]["status"] == "cancelled"
    sim_call(wechat_sim, "POST", "/__sim/pay/pay", {"out_trade_no": order["out_trade_no"], "force": True, "wait": True})
    assert orders.get_order(order["order_id"]).status == "paid"
    assert counters("sku-durian-3kg")["sold"] == 2 and params["package"]


def test_a_late_payment_for_sold_out_goods_is_refunded_in_full(client, wechat_sim, shopper):
    order = _order(client, shopper, quantity=20)  # every durian
    call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=shopper)
    call(client, "POST", f"/v1/orders/{order['order_id']}/cancel", token=shopper)
    _order(client, log_in(client, "bob-1")[0], quantity=20)  # someone else takes them all
    sim_call(wechat_sim, "POST", "/__sim/pay/pay", {"out_trade_no": order["out_trade_no"], "force": True, "wait": True})
    admin = admin_token(client)
    view = call(client, "GET", f"/v1/admin/orders/{order['order_id']}", token=admin)[1]
    assert view["status"] == "cancelled"
    assert [p["amount_fen"] for p in view["payments"]] == [order["payable_fen"]]
    assert [r["amount_fen"] for r in view["refunds"]] == [order["payable_fen"]]
    assert view["refunds"][0]["status"] in ("processing", "success")


def test_paying_someone_elses_or_a_cancelled_order_is_refused(client, wechat_sim, shopper):
    order = _order(client, shopper)
    other, _ = log_in(client, "bob-1")
    assert call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=other)[0] == 404
    call(client, "POST", f"/v1/orders/{order['order_id']}/cancel", token=shopper)
    status, error, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=shopper)
    assert status == 409
    assert_envelope(error, "invalid_order_state")


def test_v2_pays_with_xml_notifies_too(client, wechat_sim, shopper, monkeypatch):
    from tests.conftest import reset_process_caches

    monkeypatch.setenv("WECHAT_PAY_VERSION", "v2")
    reset_process_caches()
    order = _order(client, shopper)
    result = _pay(client, wechat_sim, shopper, order)
    assert result["ok"] and result["transaction"]["api"] == "v2"
    assert orders.get_order(order["order_id"]).status == "paid"


def test_an_xml_notify_with_entities_is_refused_and_writes_nothing(client, wechat_sim, shopper, monkeypatch):
    from tests.conftest import reset_process_caches

    monkeypatch.setenv("WECHAT_PAY_VERSION", "v2")  # a v3 store refuses v2 notifies before parsing
    reset_process_caches()
    xxe = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
           b"<xml><return_code>SUCCESS</return_code><out_trade_no>&e;</out_trade_no></xml>")
    response = client.http.post("/v1/payments/wechat/notify", headers={"Content-Type": "text/xml"}, body=xxe)
    assert response.status_code == 200 and b"FAIL" in (response.body or b"")
    assert PaymentRecord.count() == 0


def test_a_v3_notify_without_signature_headers_is_a_4xx_fail(client, wechat_sim, shopper):
    response = client.http.post("/v1/payments/wechat/v3/notify", headers={"Content-Type": "application/json"},
                                body=b'{"id": "x", "event_type": "TRANSACTION.SUCCESS"}')
    assert response.status_code == 401
    assert b'"code": "FAIL"' in response.body or b'"code":"FAIL"' in response.body


def test_a_redelivered_notify_of_a_second_payment_is_answered_as_a_success(client, wechat_sim, shopper,
                                                                           monkeypatch):
    from chalicelib import clock
    from chalicelib.services.pay_gateway import PayGateway
    from chalicelib.wechat.pay_types import PaymentNotification, Transaction
    from tests.conftest import TEST_ENV

    order = _order(client, shopper)
    _pay(client, wechat_sim, shopper, order)
    # The buyer paid the same order twice (e.g. from two devices): WeChat's verified word on the
    # second payment, delivered and then redelivered (as WeChat does until it hears success).
    second = PaymentNotification("payment", Transaction(
        out_trade_no=order["out_trade_no"], transaction_id="4200000000second", trade_state="SUCCESS",
        amount_total_fen=order["payable_fen"], payer_openid="o-payer", appid=TEST_ENV["WECHAT_APPID"],
        mchid="1900000109", success_time=clock.now()), None, "notify-2")
    monkeypatch.setattr(PayGateway, "parse_v3_notify", lambda self, headers, body: second)
    for _ in range(3):
        response = client.http.post("/v1/payments/wechat/v3/notify", headers={"Content-Type": "application/json"},
                                    body=b"{}")
        assert response.status_code == 204, response.body
    assert [r.out_refund_no for r in payment_store.refunds_of_order(order["order_id"])] == ["RF4200000000second"]
    assert orders.get_order(order["order_id"]).status == "paid"
