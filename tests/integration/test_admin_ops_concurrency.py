"""Merchant operations under real concurrency, on AWS's DynamoDB Local engine: split shipments of
one line never over-ship, and a merchant refund racing a buyer's refund of the same line never
refunds it twice."""
from __future__ import annotations

import pytest

from chalicelib.services import after_sales, merchant_refunds, order_ops
from chalicelib.storage import after_sales as claims_store
from chalicelib.storage import orders, payments, transactions
from tests.integration.concurrency import race
from tests.storage.order_fixtures import make_order, make_product, pay

pytestmark = pytest.mark.dynamodb_local


@pytest.fixture
def paid(dynamodb_local):
    make_product(skus={"s1": 10})
    order = make_order("o1", {"s1": 3})
    transactions.place_order_reserving_stock(order)
    pay(orders.get_order("o1"))
    return orders.get_order("o1")



def test_concurrent_packages_of_one_line_never_ship_more_than_was_bought(paid):
    outcomes = race(12, lambda n: order_ops.ship_package("o1", {"s1": 1}, "SF", f"SF{n:08d}", by="a").status)
    order = orders.get_order("o1")
    assert order.shipped_units == {"s1": 3} and len(order.shipments) == 3
    assert outcomes.count("paid") + outcomes.count("shipped") == 3 and outcomes.count("shipped") == 1
    assert set(outcomes) <= {"paid", "shipped", "exceeds_shippable", "invalid_order_state", "concurrent_update"}
    assert order.status == "shipped"


def test_a_merchant_refund_racing_the_buyers_refund_of_the_same_units_claims_them_once(paid):
    def task(n: int) -> str:
        if n % 2:
            return merchant_refunds.refund_lines("o1", f"req-{n:08d}", {"s1": 2}, "缺货", "a").status
        return after_sales.request_after_sale("u1", "o1", "refund", "不要了", {"s1": 2}).status

    outcomes = race(10, task)
    won = [outcome for outcome in outcomes if outcome not in ("refund_exceeds_order", "concurrent_update")]
    assert len(won) == 1, outcomes
    assert claims_store.get_claims("o1").units == {"s1": 2}
    refunds = payments.refunds_of_order("o1")
    assert len(refunds) <= 1 and sum(refund.amount_fen for refund in refunds) <= 2000


def test_a_package_racing_a_refund_request_never_ships_a_claimed_unit(paid):
    def task(n: int) -> str:
        if n % 2:
            return order_ops.ship_package("o1", {"s1": 2}, "SF", f"SF{n:08d}", by="a").status
        return after_sales.request_after_sale("u1", "o1", "refund", "不要了", {"s1": 2}).status

    race(10, task)
    order = orders.get_order("o1")
    shipped = (order.shipped_units or {}).get("s1", 0)
    claimed = claims_store.get_claims("o1").units.get("s1", 0)
    assert shipped + claimed <= 3 and shipped in (0, 2) and claimed in (0, 2)
