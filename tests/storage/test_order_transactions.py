"""Orders and stock move together, all or nothing; each condition's failure path (moto)."""
from __future__ import annotations

import pytest

from chalicelib import clock
from chalicelib.storage import orders, transactions
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.catalog import ProductRecord
from tests.storage.order_fixtures import counters, make_order, make_product


def test_placing_an_order_reserves_its_units(aws):
    make_product(skus={"s1": 10, "s2": 5})
    transactions.place_order_reserving_stock(make_order("o1", {"s1": 3, "s2": 5}))
    assert counters("s1") == {"available": 7, "allocated": 0, "reserved": 3, "sold": 0, "stock_in": 10}
    assert counters("s2")["available"] == 0 and counters("s2")["reserved"] == 5
    assert orders.get_order("o1").status == "pending_payment"


def test_a_short_sku_writes_nothing_and_names_the_sku(aws):
    make_product(skus={"s1": 10, "s2": 1})
    with pytest.raises(transactions.StockShortage) as error:
        transactions.place_order_reserving_stock(make_order("o1", {"s1": 3, "s2": 2}))
    assert error.value.sku_ids == ["s2"]
    assert orders.get_order("o1") is None
    assert counters("s1")["available"] == 10 and counters("s2")["available"] == 1


def test_an_unknown_sku_is_a_shortage_and_creates_no_sku_item(aws):
    make_product(skus={"s1": 10})
    with pytest.raises(transactions.StockShortage) as error:
        transactions.place_order_reserving_stock(make_order("o1", {"s1": 1, "ghost": 1}))
    assert error.value.sku_ids == ["ghost"]
    assert counters("s1")["available"] == 10


def test_an_off_sale_product_writes_nothing(aws):
    make_product(skus={"s1": 10})
    ProductRecord("p1").update(actions=[ProductRecord.on_sale.set(False)])
    with pytest.raises(transactions.ProductUnavailable):
        transactions.place_order_reserving_stock(make_order("o1", {"s1": 1}))
    assert orders.get_order("o1") is None and counters("s1")["available"] == 10


def test_the_same_order_id_twice_is_a_replay_and_reserves_nothing_more(aws):
    make_product(skus={"s1": 10})
    transactions.place_order_reserving_stock(make_order("o1", {"s1": 2}))
    with pytest.raises(transactions.OrderAlreadyExists):
        transactions.place_order_reserving_stock(make_order("o1", {"s1": 2}))
    assert counters("s1")["reserved"] == 2


def test_cancelling_releases_once_and_a_second_cancel_changes_nothing(aws):
    make_product(skus={"s1": 10})
    order = make_order("o1", {"s1": 4})
    transactions.place_order_reserving_stock(order)
    transactions.cancel_order_releasing_stock(order, "user", clock.now())
    with pytest.raises(transactions.StatusChanged):
        transactions.cancel_order_releasing_stock(order, "timeout", clock.now())
    assert counters("s1") == {"available": 10, "allocated": 0, "reserved": 0, "sold": 0, "stock_in": 10}
    closed = orders.get_order("o1")
    assert closed.status == "cancelled" and closed.cancel_reason == "user"


def test_paying_commits_reserved_units_to_sold_and_blocks_a_later_cancel(aws):
    make_product(skus={"s1": 10})
    order = make_order("o1", {"s1": 4})
    transactions.place_order_reserving_stock(order)
    transactions.pay_order_committing_stock(order, clock.now())
    with pytest.raises(transactions.StatusChanged):
        transactions.cancel_order_releasing_stock(order, "timeout", clock.now())
    assert counters("s1") == {"available": 6, "allocated": 0, "reserved": 0, "sold": 4, "stock_in": 10}


def test_a_status_change_from_the_wrong_status_fails_and_changes_nothing(aws):
    make_product(skus={"s1": 10})
    transactions.place_order_reserving_stock(make_order("o1", {"s1": 1}))
    with pytest.raises(ConditionFailed):
        orders.change_status("o1", "paid", "shipped", shipped_at=clock.now())
    assert orders.get_order("o1").status == "pending_payment"


def test_only_due_unpaid_orders_are_found_by_the_sweep_index(aws):
    make_product(skus={"s1": 10})
    transactions.place_order_reserving_stock(make_order("due", {"s1": 1}, deadline_minutes=-1))
    transactions.place_order_reserving_stock(make_order("later", {"s1": 1}, deadline_minutes=15))
    paid = make_order("paid", {"s1": 1}, deadline_minutes=-1)
    transactions.place_order_reserving_stock(paid)
    transactions.pay_order_committing_stock(paid, clock.now())
    assert orders.due_order_ids(orders.TIMER_PAY_DEADLINE, clock.now(), 10) == ["due"]
