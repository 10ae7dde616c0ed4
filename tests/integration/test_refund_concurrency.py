"""Refund completions racing on one order, on AWS's DynamoDB Local engine: the order's refunded
total adds up (never overwritten, never above what was paid) and it becomes `refunded` exactly
when the last fen comes back, whichever completion is last."""
from __future__ import annotations

import pytest

from chalicelib import clock
from chalicelib.services import refunds
from chalicelib.storage import orders, transactions
from chalicelib.storage import payments as payment_store
from chalicelib.wechat.pay_types import Refund as WeChatRefund
from tests.conftest import reset_process_caches
from tests.integration.concurrency import race
from tests.storage.order_fixtures import counters, make_order, make_product, pay

pytestmark = pytest.mark.dynamodb_local
PARTS = 6


@pytest.fixture
def paid(dynamodb_local):
    reset_process_caches()
    make_product(skus={f"s{n}": 5 for n in range(PARTS)})
    order = make_order("o1", {f"s{n}": 1 for n in range(PARTS)})  # 6 lines of 1,000 fen
    transactions.place_order_reserving_stock(order)
    pay(order)
    return orders.get_order("o1")


def _success(refund) -> WeChatRefund:
    return WeChatRefund(out_refund_no=refund.out_refund_no, refund_id=f"503{refund.out_refund_no}",
                        out_trade_no=refund.order_id, transaction_id=refund.transaction_id,
                        refund_fen=refund.amount_fen, total_fen=None, status="SUCCESS", success_time=clock.now())


def test_refunds_of_every_line_completing_at_once_make_the_order_refunded_once(paid):
    parts = []
    for n in range(PARTS):
        refund = refunds.new_refund(paid, paid.transaction_id, 1000, "race", lines=((f"s{n}", 1),),
                                    out_refund_no=f"RF-race-{n}")
        payment_store.create_refund(refund)
        parts.append(refund)
    # each refund's success arrives twice at once (notify and query), all refunds together
    outcomes = race(PARTS * 2, lambda n: refunds.handle_refund_result(_success(parts[n % PARTS])))
    assert sorted(outcomes) == ["duplicate"] * PARTS + ["refunded"] * PARTS
    order = orders.get_order("o1")
    assert (order.status, order.refunded_fen) == ("refunded", paid.payable_fen)
    for n in range(PARTS):
        assert counters(f"s{n}") == {"available": 5, "allocated": 0, "reserved": 0, "sold": 0, "stock_in": 5}


def test_shipping_racing_the_approval_of_a_refund_never_ships_refunded_goods(paid):
    from chalicelib.services import after_sales, order_lifecycle

    request = after_sales.request_after_sale(paid.user_id, "o1", "refund", "不要了", None)
    outcomes = race(2, lambda n: after_sales.approve(request.request_id).status if n == 0
                    else order_lifecycle.ship_order("o1", "顺丰速运", "SF1234567890").status)
    order = orders.get_order("o1")
    if outcomes[1] == "shipped":  # shipping won: the refund priced as unshipped cannot be approved
        assert outcomes[0] == "invalid_order_state" and payment_store.refunds_of_order("o1") == []
    else:  # the approval won: shipping waits for the refund
        assert outcomes == ["refunding", "refund_in_progress"] and order.status == "paid"
        assert order.refunds_in_flight == {f"AS{request.request_id}"}


def test_sales_jobs_running_at_once_count_each_payment_once(paid):
    from chalicelib.services import sales_counts
    from chalicelib.storage.products import get_product

    outcomes = race(4, lambda n: sales_counts.count_sales()["failed"])
    assert outcomes == [0, 0, 0, 0]
    assert get_product("p1", consistent=True).sales_count == PARTS  # one unit of each of its 6 SKUs
