"""The safety nets around notifies, against the simulator over HTTP: reconciliation finds a lost
notify, WeChat's order is settled before ours closes, and refund retries are idempotent."""
from __future__ import annotations

import dataclasses

import time
from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.services import order_lifecycle, payments, refunds
from chalicelib.storage import orders
from chalicelib.storage import payments as payment_store
from chalicelib.storage.payments import PaymentRecord, RefundRecord
from tests.api.helpers import call, log_in, sim_call
from tests.storage.order_fixtures import counters


PAY_TIMEOUT_SECONDS = 3.0  # long enough for placing and prepaying on a loaded machine (WeChat refuses a past time_expire)


@pytest.fixture
def prepaid(client, demo_store, monkeypatch):
    """An order the user opened the payment sheet for (WeChat knows it), not paid yet.

    Real time, a short deadline: freezing our clock would also make the simulator's signatures
    look stale to our verifier (which is the point of the 5-minute window)."""
    from tests.conftest import reset_process_caches

    monkeypatch.setenv("PAY_TIMEOUT_MINUTES", str(PAY_TIMEOUT_SECONDS / 60))
    reset_process_caches()
    token, _ = log_in(client)
    status, order, _ = call(client, "POST", "/v1/orders", {
        "items": [{"sku_id": "sku-durian-3kg", "quantity": 2}], "delivery_method": "pickup",
        "store_id": "store-xuhui", "checkout_token": "safety-net-0001"}, token=token)
    assert status == 201
    assert call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=token)[0] == 200
    return order


def _past_deadline() -> None:
    time.sleep(PAY_TIMEOUT_SECONDS + 0.3)


def _pay_without_notify(wechat_sim, order):
    """The user pays, but the notify never reaches us (it is held by the simulator)."""
    sim_call(wechat_sim, "POST", "/__sim/pay/pay", {"out_trade_no": order["out_trade_no"], "hold": True})


def test_reconciliation_applies_a_payment_whose_notify_was_lost(prepaid, wechat_sim):
    _pay_without_notify(wechat_sim, prepaid)
    assert orders.get_order(prepaid["order_id"]).status == "pending_payment"
    assert payments.reconcile_unpaid_orders() == {"paid": 1}  # near its deadline: asked about
    assert orders.get_order(prepaid["order_id"]).status == "paid"
    assert PaymentRecord.count() == 1


def test_the_timeout_applies_a_payment_wechat_has_instead_of_closing(prepaid, wechat_sim):
    _pay_without_notify(wechat_sim, prepaid)
    _past_deadline()
    assert order_lifecycle.close_if_overdue(prepaid["order_id"]) == "paid"
    assert orders.get_order(prepaid["order_id"]).status == "paid"
    assert counters("sku-durian-3kg")["sold"] == 2


def test_the_timeout_closes_wechats_order_before_ours(prepaid, wechat_sim):
    _past_deadline()
    assert order_lifecycle.close_if_overdue(prepaid["order_id"]) == "closed"
    assert orders.get_order(prepaid["order_id"]).status == "cancelled"
    state = sim_call(wechat_sim, "GET", f"/__sim/pay/transactions/{prepaid['out_trade_no']}")["trade_state"]
    assert state == "CLOSED"  # the payment sheet can no longer take money for it


def test_nothing_is_closed_while_wechat_cannot_be_asked(prepaid, wechat_sim):
    from tests.api.helpers import sim_fault

    sim_fault(wechat_sim, "pay_v3_query", http_status=503, times=5)
    _past_deadline()
    assert order_lifecycle.close_if_overdue(prepaid["order_id"]) == "unavailable"
    assert orders.get_order(prepaid["order_id"]).status == "pending_payment"
    assert counters("sku-durian-3kg")["reserved"] == 2


def test_refund_retries_are_idempotent_by_out_refund_no(client, prepaid, wechat_sim, monkeypatch):
    from chalicelib.wechat.pay_types import Refund as WeChatRefund

    sim_call(wechat_sim, "POST", "/__sim/pay/pay", {"out_trade_no": prepaid["out_trade_no"], "hold": True})
    payments.reconcile_unpaid_orders(ahead=timedelta(hours=1))
    order = orders.get_order(prepaid["order_id"])
    refund = refunds.new_refund(order, order.transaction_id, 1000, "test", lines=(("sku-durian-3kg", 1),),
                                out_refund_no="RT-retry-1")
    wechat_sim.state.pay.refund_delay_ms = None  # WeChat keeps it PROCESSING while the job asks again
    refund = dataclasses.replace(refund, next_attempt_at=clock.now())  # due at once
    payment_store.create_refund(refund)
    monkeypatch.setattr(refunds, "next_refund_attempt", lambda *_args, **_kw: timedelta(0))  # and again
    for _ in range(3):  # the retry job runs again and again; WeChat is asked with the same number
        assert refunds.retry_due_refunds() == {"processing": 1}
    done = WeChatRefund(out_refund_no="RT-retry-1", refund_id="5030000001", out_trade_no=order.out_trade_no,
                        transaction_id=order.transaction_id, refund_fen=1000, total_fen=order.payable_fen,
                        status="SUCCESS", success_time=clock.now())
    outcomes = [refunds.handle_refund_result(done) for _ in range(3)]
    assert outcomes.count("refunded") <= 1 and set(outcomes) <= {"refunded", "duplicate"}
    assert RefundRecord.count() == 1 and payment_store.get_refund("RT-retry-1").status == "success"
    assert counters("sku-durian-3kg")["available"] == 19  # restocked exactly once
    transaction = sim_call(wechat_sim, "GET", f"/__sim/pay/transactions/{prepaid['out_trade_no']}")
    assert len(transaction["refunds"]) == 1  # WeChat has one refund, however often it was asked
