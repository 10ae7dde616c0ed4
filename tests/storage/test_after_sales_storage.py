"""After-sales storage: every conditional write on the path where its condition fails (moto)."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.services import refunds
from chalicelib.storage import after_sales, orders, payments, transactions
from chalicelib.storage.after_sales import AfterSale, Claims, Contended, RequestLine
from chalicelib.storage.orders import Order
from tests.storage.order_fixtures import make_order, make_product, pay

NOW = clock.now()


def paid_order(order_id: str, lines: dict[str, tuple[int, int]], *, user_id: str = "u1", fee: int = 0,
               product_id: str = "p1") -> Order:
    """A paid order whose lines are {sku_id: (units, payable_fen)} (payables need not divide evenly)."""
    base = make_order(order_id, {sku_id: units for sku_id, (units, _) in lines.items()}, user_id=user_id,
                      product_id=product_id)
    order_lines = tuple(dataclasses.replace(line, payable_fen=lines[line.sku_id][1],
                                            discount_fen=line.subtotal_fen - lines[line.sku_id][1])
                        for line in base.lines)
    goods = sum(line.subtotal_fen for line in order_lines)
    payable = sum(line.payable_fen for line in order_lines) + fee
    order = dataclasses.replace(base, lines=order_lines, goods_fen=goods, discount_fen=goods + fee - payable,
                                delivery_fee_fen=fee, payable_fen=payable, delivery_method="express")
    transactions.place_order_reserving_stock(order)
    pay(order)
    return orders.get_order(order_id)


def _request(request_id: str, order_id: str = "o1", units: int = 2, status: str = "requested",
             created_at=NOW) -> AfterSale:
    return AfterSale(request_id=request_id, order_id=order_id, user_id="u1", kind="refund", reason="不想要了",
                     status=status, lines=(RequestLine("s1", units, 200 * units),), delivery_fee_fen=0,
                     amount_fen=200 * units, created_at=created_at, updated_at=created_at)


def _claims(held: Claims, units: int) -> Claims:
    return Claims(held.order_id, held.version, {"s1": units}, {"s1": 200 * units})


@pytest.fixture
def order(aws) -> Order:
    make_product(skus={"s1": 10})
    return paid_order("o1", {"s1": (5, 1000)})


def test_a_request_and_its_claims_are_written_together(order):
    held = after_sales.get_claims("o1")
    assert held == Claims("o1")
    after_sales.create_request(_request("r1"), "paid", held, _claims(held, 2))
    assert after_sales.get_request("r1").lines == (RequestLine("s1", 2, 400),)
    assert after_sales.get_claims("o1") == Claims("o1", 1, {"s1": 2}, {"s1": 400}, 0)


def test_claims_read_before_another_request_cannot_be_written(order):
    stale = after_sales.get_claims("o1")
    after_sales.create_request(_request("r1"), "paid", stale, _claims(stale, 2))
    with pytest.raises(Contended):
        after_sales.create_request(_request("r2"), "paid", stale, _claims(stale, 2))
    assert after_sales.get_request("r2") is None
    assert after_sales.get_claims("o1").units == {"s1": 2}
    fresh = after_sales.get_claims("o1")
    with pytest.raises(Contended):  # a second writer that read "no claims" after the first existed
        after_sales.create_request(_request("r3"), "paid", Claims("o1"), _claims(fresh, 4))


def test_a_request_is_not_written_when_the_order_moved_since_it_was_read(order):
    orders.change_status("o1", "paid", "shipped", shipped_at=NOW)
    held = after_sales.get_claims("o1")
    with pytest.raises(Contended):
        after_sales.create_request(_request("r1"), "paid", held, _claims(held, 2))
    assert after_sales.get_request("r1") is None and after_sales.get_claims("o1") == Claims("o1")


def _approve(request: AfterSale, out_refund_no: str, order: Order, order_status: str = "paid") -> None:
    refund = refunds.new_refund(order, order.transaction_id, request.amount_fen, request.reason, lines=(("s1", 2),),
                                out_refund_no=out_refund_no, request_id=request.request_id)
    after_sales.start_refund(request, refund, order_status, NOW)


def test_starting_a_refund_records_it_once(order):
    held = after_sales.get_claims("o1")
    after_sales.create_request(_request("r1"), "paid", held, _claims(held, 2))
    request = after_sales.get_request("r1")
    _approve(request, "ASr1", order)
    with pytest.raises(Contended):  # the same request as read before: already moved
        _approve(request, "ASr1-x", order)
    with pytest.raises(Contended):  # an out_refund_no that exists already
        _approve(after_sales.get_request("r1"), "ASr1", order)
    with pytest.raises(Contended):  # the order shipped meanwhile
        _approve(after_sales.get_request("r1"), "ASr1-y", order, order_status="shipped")
    moved = after_sales.get_request("r1")
    assert (moved.status, moved.attempt, moved.out_refund_no) == ("refunding", 1, "ASr1")
    assert [r.out_refund_no for r in payments.refunds_of_order("o1")] == ["ASr1"]
    assert payments.get_refund("ASr1").request_id == "r1"


def test_rejecting_releases_the_claims_unless_they_moved(order):
    held = after_sales.get_claims("o1")
    after_sales.create_request(_request("r1"), "paid", held, _claims(held, 2))
    request, now_held = after_sales.get_request("r1"), after_sales.get_claims("o1")
    with pytest.raises(Contended):
        after_sales.reject_request(request, "no", held, Claims("o1"), NOW)  # stale claims
    assert after_sales.get_request("r1").status == "requested"
    after_sales.reject_request(request, "照片不清楚", now_held, Claims("o1", now_held.version), NOW)
    assert after_sales.get_request("r1").note == "照片不清楚" and after_sales.get_claims("o1").units == {}
    with pytest.raises(Contended):  # rejected already: the request is no longer as read
        after_sales.reject_request(request, "again", after_sales.get_claims("o1"), Claims("o1"), NOW)


def test_a_refund_result_moves_only_the_request_it_belongs_to(order):
    held = after_sales.get_claims("o1")
    after_sales.create_request(_request("r1"), "paid", held, _claims(held, 2))
    assert after_sales.mark_refunded("r1", "ASr1", NOW) is False  # not refunding yet
    _approve(after_sales.get_request("r1"), "ASr1", order)
    assert after_sales.mark_refunded("r1", "ASother", NOW) is False  # a stale attempt's result
    assert after_sales.mark_refund_failed("r1", "ASr1", "WeChat Pay says CLOSED", NOW) is True
    failed = after_sales.get_request("r1")
    assert (failed.status, failed.note) == ("approved", "WeChat Pay says CLOSED")
    assert after_sales.mark_refunded("r1", "ASr1", NOW) is False  # no longer refunding
    _approve(failed, "ASr1-2", order)
    assert after_sales.mark_refunded("r1", "ASr1-2", NOW) is True
    assert after_sales.mark_refunded("r1", "ASr1-2", NOW) is False  # a repeat changes nothing
    assert after_sales.get_request("r1").status == "refunded"


def test_requests_are_listed_newest_first_by_status_or_all(order):
    for n in range(3):
        held = after_sales.get_claims("o1")
        after_sales.create_request(_request(f"r{n}", units=1, created_at=NOW + timedelta(seconds=n)), "paid", held,
                                   _claims(held, n + 1))
    held = after_sales.get_claims("o1")
    after_sales.reject_request(after_sales.get_request("r1"), "no", held, _claims(held, 2), NOW)
    page, cursor = after_sales.list_requests(None, 2, None)
    assert [r.request_id for r in page] == ["r2", "r1"] and cursor
    rest, _ = after_sales.list_requests(None, 2, cursor)
    assert [r.request_id for r in rest] == ["r0"]
    assert [r.request_id for r in after_sales.list_requests("requested", 10, None)[0]] == ["r2", "r0"]
    assert [r.request_id for r in after_sales.list_requests("rejected", 10, None)[0]] == ["r1"]
