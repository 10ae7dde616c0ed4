"""After-sales under real concurrency, on AWS's DynamoDB Local engine (real threads): no unit is
claimed twice, amounts add up exactly, and one approval makes one refund record."""
from __future__ import annotations


import pytest

from chalicelib.services import after_sales as service
from chalicelib.storage import after_sales, payments
from chalicelib.storage.after_sales import AfterSaleRecord
from chalicelib.storage.payments import RefundRecord
from tests.storage.order_fixtures import make_product
from tests.storage.test_after_sales_storage import paid_order

from tests.integration.concurrency import race as _race

pytestmark = pytest.mark.dynamodb_local



@pytest.fixture
def order(dynamodb_local, wechat_sim):  # the refund call goes to the simulator over HTTP
    make_product("p1", skus={"s1": 20, "s2": 20})
    return paid_order("o1", {"s1": (7, 1000), "s2": (2, 599)}, fee=800)


def test_ten_concurrent_whole_order_requests_make_exactly_one(order):
    results = _race(10, lambda n: service.request_after_sale("u1", "o1", "refund", f"reason {n}", None))
    made = [r for r in results if not isinstance(r, str)]
    assert len(made) == 1 and made[0].amount_fen == order.payable_fen
    assert sorted(set(r for r in results if isinstance(r, str))) == ["refund_exceeds_order"]
    assert AfterSaleRecord.count() == 1
    claims = after_sales.get_claims("o1")
    assert (claims.units, claims.delivery_fee_fen) == ({"s1": 7, "s2": 2}, 800)


def test_concurrent_single_units_claim_each_unit_once_and_add_up_to_the_line(order):
    results = _race(10, lambda n: service.request_after_sale("u1", "o1", "refund", "x", {"s1": 1}))
    made = [r for r in results if not isinstance(r, str)]
    assert len(made) == 7 and [r for r in results if isinstance(r, str)] == ["refund_exceeds_order"] * 3
    assert sum(r.amount_fen for r in made) == 1000  # the line's payable_fen, to the fen
    assert after_sales.get_claims("o1").units == {"s1": 7}


def test_ten_concurrent_approvals_make_one_refund_record(order):
    request = service.request_after_sale("u1", "o1", "refund", "不想要了", None)
    results = _race(10, lambda n: service.approve(request.request_id))
    assert all(not isinstance(r, str) and r.status in ("refunding", "refunded") for r in results), results
    assert {r.out_refund_no for r in results} == {f"AS{request.request_id}"}
    assert RefundRecord.count() == 1
    [refund] = payments.refunds_of_order("o1")
    assert (refund.amount_fen, refund.request_id) == (order.payable_fen, request.request_id)
    assert refund.status in ("processing", "success")


def test_approve_and_reject_racing_end_in_one_of_them(order):
    request = service.request_after_sale("u1", "o1", "refund", "x", None)
    results = _race(8, lambda n: (service.approve if n % 2 else
                                  lambda request_id: service.reject(request_id, "no"))(request.request_id))
    final = after_sales.get_request(request.request_id)
    refunds = payments.refunds_of_order("o1")
    if final.status == "rejected":
        assert refunds == [] and after_sales.get_claims("o1").units == {}
    else:
        assert final.status in ("refunding", "refunded") and len(refunds) == 1
        assert after_sales.get_claims("o1").units == {"s1": 7, "s2": 2}
    assert set(r for r in results if isinstance(r, str)) <= {"invalid_order_state"}
