"""Orders and stock under real concurrency, on AWS's DynamoDB Local engine (real threads)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.schemas.orders import PlaceOrderBody
from chalicelib.services import checkout, stock
from chalicelib.services import order_lifecycle as lifecycle
from chalicelib.storage import orders, stores
from chalicelib.storage.orders import OrderRecord
from tests.storage.order_fixtures import counters, make_product

from tests.integration.concurrency import race as _race

pytestmark = pytest.mark.dynamodb_local


@pytest.fixture
def last_ten_units(dynamodb_local):
    make_product("p1", skus={"s1": 10})
    stores.create_store("st1", name="店", address="上海", hours="9-21")


def _body(token: str, quantity: int = 1) -> PlaceOrderBody:
    return PlaceOrderBody.model_validate({"items": [{"sku_id": "s1", "quantity": quantity}],
                                          "delivery_method": "pickup", "store_id": "st1", "checkout_token": token})



def test_fifty_buyers_for_the_last_ten_units_make_exactly_ten_orders(last_ten_units):
    results = _race(50, lambda n: checkout.place_order(f"user-{n}", _body(f"token-{n:04d}"))[0].order_id)
    placed = [r for r in results if r.startswith("o")]
    assert len(placed) == 10 and len(set(placed)) == 10
    assert set(results) - set(placed) == {"insufficient_stock"}
    assert OrderRecord.count() == 10
    assert counters("s1") == {"available": 0, "allocated": 0, "reserved": 10, "sold": 0, "stock_in": 10}


def test_fifty_concurrent_replays_of_one_checkout_token_make_one_order(last_ten_units):
    results = _race(50, lambda n: checkout.place_order("user-1", _body("same-token-1", 2)))
    assert len({order.order_id for order, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert OrderRecord.count() == 1
    assert counters("s1")["reserved"] == 2


def test_a_timer_and_a_sweep_racing_on_one_order_release_its_stock_once(last_ten_units):
    order, _ = checkout.place_order("user-1", _body("race-token-1", 4))
    with clock.frozen_at(order.pay_deadline + timedelta(seconds=1)):
        outcomes = _race(20, lambda n: lifecycle.close_if_overdue(order.order_id) if n % 2
                         else lifecycle.sweep_overdue_orders())
    closed = [o for o in outcomes if o == "closed"] + [o for o in outcomes if isinstance(o, dict) and o.get("closed")]
    assert len(closed) == 1
    assert orders.get_order(order.order_id).status == "cancelled"
    assert counters("s1") == {"available": 10, "allocated": 0, "reserved": 0, "sold": 0, "stock_in": 10}


def test_a_user_cancel_racing_the_timeout_releases_once(last_ten_units):
    order, _ = checkout.place_order("user-1", _body("race-token-2", 3))
    with clock.frozen_at(order.pay_deadline + timedelta(seconds=1)):
        _race(10, lambda n: lifecycle.cancel_order("user-1", order.order_id).status if n % 2
              else lifecycle.close_if_overdue(order.order_id))
    assert orders.get_order(order.order_id).status == "cancelled"
    assert counters("s1")["available"] == 10 and counters("s1")["reserved"] == 0


def test_concurrent_orders_crossing_the_low_stock_threshold_raise_one_alert(dynamodb_local, monkeypatch):
    from chalicelib import clock as clock_module
    from chalicelib.storage import alerts, catalog

    catalog.create_product("p2", name="榴莲", category_path=["c1"], description=None, images=[], keywords=[],
                           virtual=False, now=clock_module.now())
    catalog.create_sku("s2", product_id="p2", specs={}, price_fen=100, stock=10, low_stock_threshold=5)
    stores.create_store("st1", name="店", address="上海", hours="9-21")
    body = lambda n: PlaceOrderBody.model_validate({  # noqa: E731
        "items": [{"sku_id": "s2", "quantity": 1}], "delivery_method": "pickup", "store_id": "st1",
        "checkout_token": f"alert-token-{n:03d}"})
    queued_checks: list[list[str]] = []
    monkeypatch.setattr(lifecycle, "schedule_after_placed",
                        lambda order_id, due_at, sku_ids: queued_checks.append(sku_ids))
    _race(10, lambda n: checkout.place_order(f"user-{n}", body(n)))
    # Each order queued a check of s2; the consumers run them concurrently, as 10 Lambdas
    # would, and the crossing alerts once.
    assert queued_checks == [["s2"]] * 10
    _race(10, lambda n: stock.after_stock_moved(queued_checks[n], decreased=True))
    page, _ = alerts.list_alerts("low_stock", 10, None)
    assert [alert.sku_id for alert in page] == ["s2"]
    assert counters("s2")["available"] == 0


def test_two_orders_with_the_same_coupon_one_wins_the_other_reserves_nothing(last_ten_units):
    from chalicelib.domain.coupons import CouponScope
    from chalicelib.services import coupons as coupon_service
    from chalicelib.storage import coupons

    now = clock.now()
    coupons.create_template(coupons.CouponTemplate(
        template_id="t5", name="无门槛5元", kind="no_threshold", threshold_fen=0, off_fen=500, rate_permille=0,
        cap_fen=0, scope=CouponScope(), valid_from=None, valid_to=None, valid_days=30, claim_from=None,
        claim_to=None, total=10, issued=0, per_user_limit=1, channel="claim", stack_group="default",
        status="active", terms_version=1, created_at=now, updated_at=now))
    coupon, _ = coupon_service.issue_coupon("user-1", "t5", channel="claim")
    results = _race(2, lambda n: checkout.place_order(
        "user-1", _body(f"coupon-token-{n}").model_copy(update={"coupon_ids": [coupon.coupon_id]}))[0].order_id)
    placed = [r for r in results if r.startswith("o")]
    assert len(placed) == 1 and set(results) - set(placed) == {"coupon_unavailable"}
    assert OrderRecord.count() == 1
    assert counters("s1")["reserved"] == 1 and counters("s1")["available"] == 9
    wallet = coupons.get_wallet("user-1", consistent=True)
    assert wallet.get(coupon.coupon_id).status == "locked"
    assert wallet.history[coupon.coupon_id].order_id == placed[0]
