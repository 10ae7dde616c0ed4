"""The analytics consumer on moto, fed stream-shaped records: counts are exact under redelivered
records, a crash between two transactions, and a refused batch delivered again."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from chalicelib import clock
from chalicelib.services import analytics, reports
from chalicelib.storage import analytics as store
from chalicelib.storage import rfm as customers
from tests.services.analytics_records import evolve, order_change, record, tracking_event
from tests.storage.order_fixtures import make_order

NOW = datetime(2024, 5, 1, 4, 0, tzinfo=timezone.utc)  # 12:00 in Shanghai
DAY = date(2024, 5, 1)


@pytest.fixture
def frozen(aws):
    with clock.frozen_at(NOW) as advance:
        yield advance


def _life_of_an_order(order_id: str = "o1", user_id: str = "u1") -> list[dict]:
    """Placed, pay asked for, paid, refunded in part, then in full: five records."""
    placed = make_order(order_id, {"s1": 2, "s2": 1}, user_id=user_id)
    asked = evolve(placed, prepay={"prepay_id": "wx1", "version": "v3"})
    paid = evolve(asked, status="paid", paid_at=NOW)
    part = evolve(paid, refunded_fen=1000)
    full = evolve(part, status="refunded", refunded_fen=3000)
    return [order_change(None, placed), order_change(placed, asked), order_change(asked, paid),
            order_change(paid, part), order_change(part, full)]


def _sales() -> dict:
    return reports.sales(DAY, DAY).items[0].model_dump()


EXPECTED_SALES = {"date": "2024-05-01", "orders": 1, "paid_orders": 1, "gmv_fen": 3000, "refund_fen": 3000,
                  "aov_fen": 3000}


def test_an_orders_life_counts_each_business_event_once(frozen):
    outcome = analytics.consume(_life_of_an_order())
    assert _sales() == EXPECTED_SALES
    assert outcome["applied"] == outcome["units"] == 8  # placed, order user, asked, paid, paid user, 2 refunds, refunded
    totals = store.totals(["2024-05-01"])["2024-05-01"]
    assert totals["pay_requests"] == 1 and totals["refunds"] == 2 and totals["refunded_orders"] == 1
    products = store.day_items("2024-05-01", "product#")
    assert products["product#p1"] == {"orders": 1, "ordered_units": 3, "paid_orders": 1, "paid_units": 3,
                                      "paid_fen": 3000}
    summary = customers.get_customer("u1")
    assert (summary["orders_paid"], summary["orders_refunded"], summary["monetary_fen"]) == (1, 1, 0)
    assert summary["first_paid_day"] == summary["last_paid_day"] == "2024-05-01"


def test_every_record_delivered_three_times_in_any_order_counts_once(frozen):
    records = _life_of_an_order()
    analytics.consume(records)
    analytics.consume(list(reversed(records)))
    outcome = analytics.consume(records + records)
    assert outcome["applied"] == 0 and outcome["skipped"] == 8
    assert _sales() == EXPECTED_SALES
    assert customers.get_customer("u1")["orders_paid"] == 1


def test_a_crash_between_two_transactions_then_the_whole_batch_again_counts_once(frozen, monkeypatch):
    records = _life_of_an_order("o1", "u1") + _life_of_an_order("o2", "u2")
    calls = {"n": 0}
    real = store._transact

    def crash_on_the_second(items):
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionError("the Lambda died here")
        return real(items)

    monkeypatch.setattr(store, "PACK_ITEMS", 6)  # several transactions for this batch
    monkeypatch.setattr(store, "_transact", crash_on_the_second)
    with pytest.raises(ConnectionError):
        analytics.consume(records)
    half = store.totals(["2024-05-01"]).get("2024-05-01", {})
    assert half.get("orders", 0) < 2 or half.get("gmv_fen", 0) < 6000  # some of it landed, not all
    monkeypatch.setattr(store, "_transact", real)
    analytics.consume(records)  # the stream delivers the batch again
    assert _sales() == {**EXPECTED_SALES, "orders": 2, "paid_orders": 2, "gmv_fen": 6000, "refund_fen": 6000}
    assert customers.get_customer("u2")["monetary_fen"] == 0


def test_a_pack_refused_for_one_applied_unit_applies_the_others(frozen):
    events = [tracking_event("u1", f"ev-{n:05d}", "page_view", NOW, source="poster") for n in range(30)]
    analytics.consume(events[10:11])  # one of them counted before (a partial earlier delivery)
    analytics.consume(events)
    totals = store.totals(["2024-05-01"])["2024-05-01"]
    assert (totals["pv"], totals["uv"]) == (30, 1)
    assert store.day_items("2024-05-01", "source#")["source#poster"]["pv"] == 30


def test_unique_visitors_and_funnel_stages_per_day_and_source(frozen):
    batch = [tracking_event("u1", "ev-a0001", "page_view", NOW, source="poster"),
             tracking_event("u1", "ev-a0002", "product_view", NOW, source="poster", product_id="p1"),
             tracking_event("u2", "ev-b0001", "page_view", NOW),
             tracking_event("u2", "ev-b0002", "product_view", NOW, product_id="p1"),
             tracking_event("u2", "ev-b0003", "add_to_cart", NOW, product_id="p1", quantity=2),
             tracking_event("u1", "ev-a0003", "page_view", NOW + timedelta(days=1), source="poster")]
    analytics.consume(batch[:3])
    analytics.consume(batch[3:])
    analytics.consume(_life_of_an_order("o1", "u2")[:3])
    funnel = reports.funnel(DAY, DAY + timedelta(days=1))
    first = funnel.items[0]
    assert (first.pv, first.product_views, first.add_to_cart) == (2, 2, 1)
    assert first.stages.model_dump() == {"exposure": 2, "click": 2, "cart": 1, "order": 1, "paid": 1}
    assert funnel.items[1].stages.exposure == 1
    assert funnel.stages.exposure == 3  # a sum of daily uniques
    sources = {row.source: row for row in funnel.sources}
    assert (sources["poster"].pv, sources["poster"].exposure, sources["direct"].cart) == (2, 2, 1)  # u1 on both days
    ranking = reports.products(DAY, DAY, "views", 10).items
    assert [(row.product_id, row.views, row.add_to_cart, row.paid_units) for row in ranking] == [("p1", 2, 1, 3)]


def test_records_that_count_nothing_or_cannot_be_read_are_skipped(frozen):
    order = make_order("o9", {"s1": 1})
    from tests.services.analytics_records import image
    from chalicelib.storage.orders import OrderRecord

    outcome = analytics.consume([
        record(OrderRecord.Meta.table_name, "REMOVE", image(order), None),
        record(OrderRecord.Meta.table_name, "MODIFY", image(order), {"order_id": {"S": "o9"}}),  # no user_id
        record("another-table", "INSERT", None, image(order)),
    ])
    assert outcome == {"records": 3, "units": 0, "applied": 0, "skipped": 0}
    assert store.totals(["2024-05-01"]) == {}


def test_reports_match_a_brute_force_recount_of_shuffled_redelivered_records(frozen):
    """A day of synthetic traffic and orders, delivered in random batches with every record at
    least once and many twice, against a recount straight from what was generated."""
    import random

    rnd = random.Random(18)
    records, expected = [], {"pv": 0, "views": {}, "users": set(), "orders": 0, "paid": 0, "gmv": 0, "refund": 0}
    for n in range(120):
        user, kind = f"v{rnd.randrange(15)}", rnd.choice(["page_view", "page_view", "product_view", "add_to_cart"])
        product = f"p{rnd.randrange(4)}"
        records.append(tracking_event(user, f"syn-{n:05d}", kind, NOW, product_id=product))
        expected["users"].add(user)
        expected["pv"] += kind == "page_view"
        if kind == "product_view":
            expected["views"][product] = expected["views"].get(product, 0) + 1
    for n in range(12):
        placed = make_order(f"s{n}", {"s1": 1 + n % 3}, user_id=f"b{n % 5}")
        records.append(order_change(None, placed))
        expected["orders"] += 1
        if n % 4 == 3:
            continue  # left unpaid
        paid = evolve(placed, status="paid", paid_at=NOW)
        records.append(order_change(placed, paid))
        expected["paid"] += 1
        expected["gmv"] += paid.payable_fen
        if n % 3 == 0:
            records.append(order_change(paid, evolve(paid, refunded_fen=500)))
            expected["refund"] += 500
    deliveries = records + rnd.sample(records, len(records) // 2)
    rnd.shuffle(deliveries)
    while deliveries:
        size = rnd.randint(1, 40)
        analytics.consume(deliveries[:size])
        deliveries = deliveries[size:]
    [sales] = reports.sales(DAY, DAY).items
    assert (sales.orders, sales.paid_orders, sales.gmv_fen, sales.refund_fen) == (
        expected["orders"], expected["paid"], expected["gmv"], expected["refund"])
    assert sales.aov_fen == expected["gmv"] // expected["paid"]
    [day] = reports.funnel(DAY, DAY).items
    assert (day.pv, day.stages.exposure, day.stages.paid) == (expected["pv"], len(expected["users"]), 5)
    views = {row.product_id: row.views for row in reports.products(DAY, DAY, "views", 10).items if row.views}
    assert views == expected["views"]
