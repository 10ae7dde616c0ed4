"""Completing refunds and retrying them (moto): the order's refunded total lives on the order and
decides `refunded` (an index that lags cannot hide a refund); the retry job isolates each refund,
backs off per refund and alerts the merchant about one that keeps failing."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.services import refunds
from chalicelib.storage import alerts, orders, transactions
from chalicelib.storage import payments as payment_store
from chalicelib.wechat.pay_types import PayApiError
from chalicelib.wechat.pay_types import Refund as WeChatRefund
from tests.storage.order_fixtures import make_order, make_product, pay


@pytest.fixture
def paid(aws):
    make_product(skus={"s1": 10})
    order = make_order("o1", {"s1": 3})  # 3,000 fen
    transactions.place_order_reserving_stock(order)
    pay(order)
    return orders.get_order("o1")


def _refund(order, number: str, amount_fen: int, due_in: timedelta | None = None, **changes):
    refund = refunds.new_refund(order, order.transaction_id, amount_fen, "test", lines=(), out_refund_no=number)
    if due_in is not None:
        refund = dataclasses.replace(refund, next_attempt_at=clock.now() + due_in)
    refund = dataclasses.replace(refund, **changes)
    assert payment_store.create_refund(refund)
    return refund


def _success(refund) -> WeChatRefund:
    return WeChatRefund(out_refund_no=refund.out_refund_no, refund_id=f"503{refund.out_refund_no}",
                        out_trade_no=refund.order_id, transaction_id=refund.transaction_id,
                        refund_fen=refund.amount_fen, total_fen=None, status="SUCCESS", success_time=clock.now())


def test_an_order_is_refunded_from_its_own_total_even_when_the_refunds_index_lags(paid, monkeypatch):
    # In AWS the refunds_by_order index is eventually consistent: the refund that just completed
    # may be missing from it. Nothing that decides money may read it.
    monkeypatch.setattr(payment_store, "refunds_of_order", lambda order_id: [])
    first, second = _refund(paid, "RF-a", 1000), _refund(paid, "RF-b", 2000)
    assert refunds.handle_refund_result(_success(first)) == "refunded"
    assert (orders.get_order("o1").status, orders.get_order("o1").refunded_fen) == ("paid", 1000)
    assert refunds.handle_refund_result(_success(second)) == "refunded"
    order = orders.get_order("o1")
    assert (order.status, order.refunded_fen) == ("refunded", 3000)
    assert refunds.handle_refund_result(_success(second)) == "duplicate"
    assert orders.get_order("o1").refunded_fen == 3000


def test_a_refund_of_another_payment_leaves_the_orders_total_alone(paid):
    second_payment = _refund(paid, "RF-twice", 3000, transaction_id="4200-second-payment")
    assert refunds.handle_refund_result(_success(second_payment)) == "refunded"
    order = orders.get_order("o1")
    assert (order.status, order.refunded_fen) == ("paid", 0)


def test_refunds_that_would_exceed_the_payment_complete_but_never_move_the_total_above_it(paid):
    _refund(paid, "RF-all", 3000)
    refunds.handle_refund_result(_success(payment_store.get_refund("RF-all")))
    extra = _refund(paid, "RF-extra", 1)  # records that disagree with WeChat: alerted, never counted
    assert refunds.handle_refund_result(_success(extra)) == "refunded"
    assert orders.get_order("o1").refunded_fen == 3000
    page, _ = alerts.list_alerts("refund_failed", 10, None)
    assert [alert.detail["problem"] for alert in page] == ["refunds exceed the payment"]


class _WeChat:
    """WeChat Pay as the retry job meets it: some refunds fail every time (the merchant's balance
    is short), one trips an unexpected error, the rest succeed."""

    def __init__(self, failing: set[str], broken: str):
        self.failing, self.broken, self.asked = failing, broken, []

    def refund(self, out_trade_no, out_refund_no, refund_fen, total_fen, reason):
        self.asked.append(out_refund_no)
        if out_refund_no == self.broken:
            raise RuntimeError("an adapter bug")
        if out_refund_no in self.failing:
            raise PayApiError("NOT_ENOUGH", "基本账户余额不足")
        return WeChatRefund(out_refund_no=out_refund_no, refund_id=f"503{out_refund_no}", out_trade_no=out_trade_no,
                            transaction_id=None, refund_fen=refund_fen, total_fen=total_fen, status="SUCCESS",
                            success_time=clock.now())


def test_refunds_failing_at_the_head_of_the_queue_do_not_starve_the_others_and_end_up_stuck(paid, monkeypatch):
    numbers = [f"RF-{n:02d}" for n in range(60)]
    for n, number in enumerate(numbers):  # oldest first: the failing ones are at the head
        _refund(paid, number, 1, due_in=timedelta(seconds=n - 120))
    wechat = _WeChat(failing=set(numbers[:52]), broken=numbers[7])
    monkeypatch.setattr(refunds, "gateway", lambda: wechat)

    first = refunds.retry_due_refunds(limit=50)
    assert first == {"retry": 49, "error": 1}  # one error did not stop the run
    assert refunds.retry_due_refunds(limit=50) == {"retry": 2, "refunded": 8}  # the failing ones wait their turn
    assert all(payment_store.get_refund(number).status == "success" for number in numbers[52:])

    with clock.frozen_at(clock.now()) as advance:
        for _ in range(refunds.MAX_FAILURES):
            advance(timedelta(hours=7))  # past the longest backoff
            refunds.retry_due_refunds(limit=100)
    stuck = [number for number in numbers[:52] if payment_store.get_refund(number).status == "stuck"]
    assert stuck == numbers[:52]
    page, _ = alerts.list_alerts("refund_stuck", 100, None)
    assert sorted(alert.detail["out_refund_no"] for alert in page) == numbers[:52]  # once each
    assert refunds.retry_due_refunds(limit=100) == {}  # stuck refunds wait for the merchant

    wechat.failing.clear()
    assert refunds.retry_stuck_refund(numbers[0]).status == "processing"
    assert refunds.retry_due_refunds(limit=100) == {"refunded": 1}
    assert payment_store.get_refund(numbers[0]).status == "success"


def test_retrying_a_refund_that_is_not_stuck_is_unchanged_or_409(paid):
    from chalicelib.errors import Conflict, NotFound

    refund = _refund(paid, "RF-x", 100)
    assert refunds.retry_stuck_refund("RF-x").status == "processing"
    refunds.handle_refund_result(_success(refund))
    with pytest.raises(Conflict):
        refunds.retry_stuck_refund("RF-x")
    with pytest.raises(NotFound):
        refunds.retry_stuck_refund("RF-missing")
