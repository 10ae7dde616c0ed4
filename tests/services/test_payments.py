"""Applying verified payment results: once, matched against our order, late ones never lost.

The notifications here are what the verified parsers hand over (their signatures and
decryption are tested against WeChat's vectors and, end to end, through the simulator).
"""
from __future__ import annotations

import pytest

from chalicelib import clock
from chalicelib.services import payments
from chalicelib.storage import alerts, orders, transactions
from chalicelib.wechat.pay_types import Transaction
from tests.conftest import TEST_ENV
from tests.storage.order_fixtures import counters, make_order, make_product, recorded_payments

MCH_ID = "1900000109"


@pytest.fixture
def unpaid(aws, monkeypatch):
    monkeypatch.setenv("WECHAT_PAY_MCH_ID", MCH_ID)
    from tests.conftest import reset_process_caches

    reset_process_caches()
    make_product(skus={"s1": 5})
    order = make_order("o1", {"s1": 2})
    transactions.place_order_reserving_stock(order)
    return order


def _success(order, transaction_id="4200000000000001", **changes) -> Transaction:
    fields = dict(out_trade_no=order.out_trade_no, transaction_id=transaction_id, trade_state="SUCCESS",
                  amount_total_fen=order.payable_fen, payer_openid="o-payer", appid=TEST_ENV["WECHAT_APPID"],
                  mchid=MCH_ID, success_time=clock.now())
    fields.update(changes)
    return Transaction(**fields)


def test_a_success_pays_the_order_and_commits_its_stock(unpaid):
    assert payments.apply_transaction(_success(unpaid), "v3") == "paid"
    order = orders.get_order("o1")
    assert order.status == "paid" and order.transaction_id == "4200000000000001"
    assert counters("s1") == {"available": 3, "allocated": 0, "reserved": 0, "sold": 2, "stock_in": 5}


def test_a_duplicate_notify_changes_nothing(unpaid):
    payments.apply_transaction(_success(unpaid), "v3")
    assert payments.apply_transaction(_success(unpaid), "v3") == "duplicate"
    assert len(recorded_payments("o1")) == 1
    assert counters("s1")["sold"] == 2


@pytest.mark.parametrize("change, problem", [
    ({"amount_total_fen": 1}, "amount does not match the order"),
    ({"mchid": "1234567890"}, "mchid does not match"),
    ({"appid": "wx_other"}, "appid does not match"),
    ({"out_trade_no": "o-unknown"}, "unknown out_trade_no"),
])
def test_a_mismatching_notify_is_refused_recorded_and_writes_nothing(unpaid, change, problem):
    with pytest.raises(payments.NotifyRejected):
        payments.apply_transaction(_success(unpaid, **change), "v3")
    assert orders.get_order("o1").status == "pending_payment"
    assert recorded_payments("o1") == []
    page, _ = alerts.list_alerts("payment_anomaly", 10, None)
    assert [alert.detail["problem"] for alert in page] == [problem]


def test_a_payment_after_the_timeout_takes_the_stock_again(unpaid):
    transactions.cancel_order_releasing_stock(unpaid, "timeout", clock.now())
    assert payments.apply_transaction(_success(unpaid), "v3") == "revived"
    assert orders.get_order("o1").status == "paid"
    assert counters("s1") == {"available": 3, "allocated": 0, "reserved": 0, "sold": 2, "stock_in": 5}


def test_a_not_yet_successful_transaction_is_ignored(unpaid):
    assert payments.apply_transaction(_success(unpaid, trade_state="NOTPAY", transaction_id=None), "v3") == "not_paid"
    assert orders.get_order("o1").status == "pending_payment"
