"""Orders and stock move together, all or nothing; each condition's failure path (moto)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.storage import catalog, orders, transactions
from chalicelib.storage.base import ConditionFailed
from tests.storage.order_fixtures import pay, counters, make_order, make_product, recorded_payments


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


def test_a_product_taken_off_sale_fails_its_skus_condition_and_writes_nothing(aws):
    make_product(skus={"s1": 10, "s2": 10})
    catalog.update_product("p1", {"on_sale": False}, clock.now())  # copied onto both SKUs, same transaction
    with pytest.raises(transactions.StockShortage) as error:
        transactions.place_order_reserving_stock(make_order("o1", {"s1": 1, "s2": 1}))
    assert error.value.sku_ids == ["s1", "s2"]
    assert orders.get_order("o1") is None and counters("s1")["available"] == 10
    catalog.update_product("p1", {"on_sale": True}, clock.now())
    transactions.place_order_reserving_stock(make_order("o1", {"s1": 1}))
    assert counters("s1")["reserved"] == 1


def test_placing_an_order_takes_its_lines_out_of_the_cart_in_the_same_transaction(aws):
    from chalicelib.storage import carts

    make_product(skus={"s1": 10, "s2": 10})
    for sku_id in ("s1", "s2"):
        carts.add_quantity("u1", sku_id, 1, 99, clock.now(), product_id="p1")
    with pytest.raises(transactions.StockShortage):  # refused: the cart keeps its lines
        transactions.place_order_reserving_stock(make_order("o1", {"s1": 11}), cart_sku_ids=["s1"])
    assert [line.sku_id for line in carts.list_lines("u1")] == ["s1", "s2"]
    transactions.place_order_reserving_stock(make_order("o1", {"s1": 1}), cart_sku_ids=["s1"])
    assert [line.sku_id for line in carts.list_lines("u1")] == ["s2"]


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
    pay(order)
    with pytest.raises(transactions.StatusChanged):
        transactions.cancel_order_releasing_stock(order, "timeout", clock.now())
    assert counters("s1") == {"available": 6, "allocated": 0, "reserved": 0, "sold": 4, "stock_in": 10}


def test_a_status_change_from_the_wrong_status_fails_and_changes_nothing(aws):
    make_product(skus={"s1": 10})
    transactions.place_order_reserving_stock(make_order("o1", {"s1": 1}))
    with pytest.raises(ConditionFailed):
        orders.change_status("o1", "paid", "shipped", shipped_at=clock.now())
    assert orders.get_order("o1").status == "pending_payment"


def test_the_sweep_finds_unpaid_orders_past_their_deadline_on_the_status_index(aws):
    make_product(skus={"s1": 10})
    transactions.place_order_reserving_stock(make_order("due", {"s1": 1}, deadline_minutes=-1))
    transactions.place_order_reserving_stock(make_order("later", {"s1": 1}, deadline_minutes=15))
    transactions.place_order_reserving_stock(make_order("not-yet", {"s1": 1}, deadline_minutes=1))
    paid = make_order("paid", {"s1": 1}, deadline_minutes=-2)
    transactions.place_order_reserving_stock(paid)
    pay(paid)  # leaves the pending_payment partition: nothing to clear afterwards
    now = clock.now()
    assert orders.overdue_unpaid_order_ids(now - timedelta(minutes=5), now, 10) == ["due"]
    assert orders.overdue_unpaid_order_ids(now, now + timedelta(minutes=2), 10) == ["due", "not-yet"]
    record = orders.OrderRecord.get("due", consistent_read=True)
    assert record.timer_kind is None  # unpaid orders carry no timer: one index write fewer


def _payment(order, transaction_id="4200000001", outcome="applied"):
    from chalicelib.storage.payments import Payment

    return Payment(transaction_id=transaction_id, order_id=order.order_id, amount_fen=order.payable_fen,
                   paid_at=clock.now(), channel="v3", outcome=outcome)


def test_a_payment_is_recorded_once_and_a_duplicate_changes_nothing(aws):
    make_product(skus={"s1": 10})
    order = make_order("o1", {"s1": 2})
    transactions.place_order_reserving_stock(order)
    transactions.pay_order(order, _payment(order), clock.now())
    with pytest.raises(transactions.DuplicatePayment):
        transactions.pay_order(order, _payment(order), clock.now())
    assert [p.transaction_id for p in recorded_payments("o1")] == ["4200000001"]
    assert orders.get_order("o1").transaction_id == "4200000001"
    assert counters("s1") == {"available": 8, "allocated": 0, "reserved": 0, "sold": 2, "stock_in": 10}


def test_paying_a_closed_order_revives_it_from_available_stock(aws):
    make_product(skus={"s1": 10})
    order = make_order("o1", {"s1": 3})
    transactions.place_order_reserving_stock(order)
    transactions.cancel_order_releasing_stock(order, "timeout", clock.now())
    with pytest.raises(transactions.StatusChanged):
        transactions.pay_order(order, _payment(order), clock.now())
    transactions.revive_order(order, _payment(order, outcome="revived"), clock.now())
    revived = orders.get_order("o1")
    assert revived.status == "paid" and revived.cancelled_at is None
    assert counters("s1") == {"available": 7, "allocated": 0, "reserved": 0, "sold": 3, "stock_in": 10}


def test_reviving_without_stock_fails_and_writes_nothing(aws):
    from chalicelib.storage import payments

    make_product(skus={"s1": 3})
    order = make_order("o1", {"s1": 3})
    transactions.place_order_reserving_stock(order)
    transactions.cancel_order_releasing_stock(order, "timeout", clock.now())
    transactions.place_order_reserving_stock(make_order("o2", {"s1": 3}))  # someone else took the units
    with pytest.raises(transactions.StockShortage):
        transactions.revive_order(order, _payment(order, outcome="revived"), clock.now())
    assert orders.get_order("o1").status == "cancelled" and payments.get_payment("4200000001") is None


def test_an_unappliable_payment_is_recorded_with_its_refund_once(aws):
    from chalicelib.storage import payments, refund_transactions
    from chalicelib.storage.payments import Refund

    make_product(skus={"s1": 3})
    order = make_order("o1", {"s1": 1})
    refund = Refund(out_refund_no="R4200000001", order_id="o1", transaction_id="4200000001",
                    amount_fen=order.payable_fen, status="processing", reason="late payment", refund_id=None,
                    request_id=None, lines=(), restock="no", created_at=clock.now(), completed_at=None)
    transactions.record_payment_to_refund(_payment(order, outcome="refunding"), refund, clock.now())
    with pytest.raises(transactions.DuplicatePayment):
        transactions.record_payment_to_refund(_payment(order, outcome="refunding"), refund, clock.now())
    assert payments.get_refund("R4200000001").status == "processing"
    # Completing it twice: the second finds it finished (its condition: still unfinished).
    refund_transactions.complete_refund(refund, "5030", clock.now(), order=None, restock=False)
    with pytest.raises(refund_transactions.RefundFinished):
        refund_transactions.complete_refund(refund, "5030", clock.now(), order=None, restock=False)
    assert payments.get_refund("R4200000001").status == "success"
