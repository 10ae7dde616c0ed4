"""Payment notifies under real concurrency, on AWS's DynamoDB Local engine."""
from __future__ import annotations

import pytest

from chalicelib import clock
from chalicelib.services import payments
from chalicelib.storage import orders, transactions
from chalicelib.wechat.pay_types import Transaction
from tests.conftest import TEST_ENV, reset_process_caches
from tests.integration.concurrency import race as _race
from tests.storage.order_fixtures import counters, make_order, make_product, recorded_payments

pytestmark = pytest.mark.dynamodb_local


@pytest.fixture
def unpaid(dynamodb_local, monkeypatch):
    monkeypatch.setenv("WECHAT_PAY_MCH_ID", "1900000109")
    reset_process_caches()
    make_product(skus={"s1": 5})
    order = make_order("o1", {"s1": 2})
    transactions.place_order_reserving_stock(order)
    return order


def _success(order) -> Transaction:
    return Transaction(out_trade_no=order.out_trade_no, transaction_id="4200000000000009", trade_state="SUCCESS",
                       amount_total_fen=order.payable_fen, payer_openid="o", appid=TEST_ENV["WECHAT_APPID"],
                       mchid="1900000109", success_time=clock.now())


def test_fifty_concurrent_replays_of_one_notify_change_the_order_once(unpaid):
    outcomes = _race(50, lambda n: payments.apply_transaction(_success(unpaid), "v3"))
    assert outcomes.count("paid") == 1 and set(outcomes) == {"paid", "duplicate"}
    assert len(recorded_payments("o1")) == 1
    assert orders.get_order("o1").status == "paid"
    assert counters("s1") == {"available": 3, "allocated": 0, "reserved": 0, "sold": 2, "stock_in": 5}


def test_a_notify_racing_the_timeout_ends_paid_or_closed_never_both(unpaid):
    from datetime import timedelta

    from chalicelib.services import order_lifecycle

    with clock.frozen_at(unpaid.pay_deadline + timedelta(seconds=1)):
        _race(20, lambda n: payments.apply_transaction(_success(unpaid), "v3") if n % 2
              else order_lifecycle.close_if_overdue("o1"))
    # Either order works out: paid straight away, or closed and then revived by the payment.
    assert orders.get_order("o1").status == "paid"
    assert len(recorded_payments("o1")) == 1
    assert counters("s1") == {"available": 3, "allocated": 0, "reserved": 0, "sold": 2, "stock_in": 5}
