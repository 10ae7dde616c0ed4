"""Units sold reach the products' sales counts (sort=sales) exactly once per payment and come off
once per refund, by the sales job: reruns, crashes between its writes and index lag count
nothing twice."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.services import refunds, sales_counts
from chalicelib.storage import catalog, orders, transactions
from chalicelib.storage import payments as payment_store
from chalicelib.storage.products import get_product
from chalicelib.wechat.pay_types import Refund as WeChatRefund
from tests.storage.order_fixtures import make_order, make_product, pay


def _sales(product_id: str) -> int:
    return get_product(product_id, consistent=True).sales_count


@pytest.fixture
def two_products(aws):
    make_product("p1", skus={"s1": 50})
    make_product("p2", skus={"s2": 50})


PRODUCT_OF = {"s1": "p1", "s2": "p2"}


def _paid(order_id: str, lines: dict[str, int]) -> orders.Order:
    order = make_order(order_id, lines)
    order = dataclasses.replace(order, lines=tuple(dataclasses.replace(line, product_id=PRODUCT_OF[line.sku_id])
                                                   for line in order.lines))
    transactions.place_order_reserving_stock(order)
    pay(order)
    return orders.get_order(order_id)


def test_paid_units_are_counted_once_however_often_the_job_runs(two_products):
    _paid("o1", {"s1": 2, "s2": 1})
    _paid("o2", {"s1": 3})
    unpaid = make_order("o3", {"s1": 5})
    transactions.place_order_reserving_stock(unpaid)  # never paid: never counted
    assert sales_counts.count_sales()["orders"] == 2
    assert (_sales("p1"), _sales("p2")) == (5, 1)
    assert sales_counts.count_sales()["orders"] == 0
    assert (_sales("p1"), _sales("p2")) == (5, 1)
    assert orders.get_order("o1").sales_counted


def test_a_crash_after_counting_but_before_marking_the_order_counts_nothing_twice(two_products, monkeypatch):
    _paid("o1", {"s1": 2, "s2": 1})
    monkeypatch.setattr(orders, "mark_sales_counted", lambda order_id: (_ for _ in ()).throw(RuntimeError("crash")))
    with pytest.raises(RuntimeError):
        sales_counts.count_sales()
    monkeypatch.undo()
    assert sales_counts.count_sales()["orders"] == 1  # found again; its markers say it was counted
    assert (_sales("p1"), _sales("p2")) == (2, 1)


def test_refunded_units_come_off_once_after_the_payment_was_counted(two_products):
    order = _paid("o1", {"s1": 3, "s2": 1})
    refund = refunds.new_refund(order, order.transaction_id, 1000, "test", lines=(("s1", 1),), out_refund_no="RF1")
    payment_store.create_refund(refund)
    done = WeChatRefund(out_refund_no="RF1", refund_id="5031", out_trade_no="o1", transaction_id=order.transaction_id,
                        refund_fen=1000, total_fen=None, status="SUCCESS", success_time=clock.now())
    assert refunds.handle_refund_result(done) == "refunded"
    first = sales_counts.count_sales()  # the payment is counted; the refund waits for it
    assert (first["orders"], first["refunds"], _sales("p1")) == (1, 0, 3)
    assert sales_counts.count_sales()["refunds"] == 1
    assert (_sales("p1"), _sales("p2")) == (2, 1)
    assert refunds.handle_refund_result(done) == "duplicate"  # WeChat says it again: nothing queued again
    assert sales_counts.count_sales() == {"orders": 0, "refunds": 0, "products": 0, "failed": 0}
    assert _sales("p1") == 2


def test_one_product_failing_leaves_its_orders_for_the_next_run(two_products, monkeypatch):
    _paid("o1", {"s1": 1})
    _paid("o2", {"s2": 1})
    real = catalog.add_sales_once

    def p2_down(product_id, *args, **kwargs):
        if product_id == "p2":
            raise RuntimeError("throttled for good")
        return real(product_id, *args, **kwargs)

    monkeypatch.setattr(catalog, "add_sales_once", p2_down)
    assert sales_counts.count_sales()["failed"] == 1
    assert (orders.get_order("o1").sales_counted, orders.get_order("o2").sales_counted) == (True, False)
    monkeypatch.undo()
    sales_counts.count_sales()
    assert (_sales("p1"), _sales("p2")) == (1, 1)


def test_orders_older_than_the_lookback_are_not_counted(two_products):
    with clock.frozen_at(clock.now() - sales_counts.LOOKBACK - timedelta(hours=1)):
        _paid("o-old", {"s1": 4})
    assert sales_counts.count_sales()["orders"] == 0 and _sales("p1") == 0
