"""Analytics rules without AWS: what each order change and tracking event counts, RFM on a
known dataset, the alert rules, the report range and CSV."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from chalicelib.domain import alert_rules, analytics, reports, rfm

T0 = datetime(2024, 5, 1, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai, 2024-05-01


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f%z")


def _order(status="pending_payment", **extra):
    return {"order_id": "o1", "user_id": "u1", "status": status, "created_at": _stamp(T0), "payable_fen": 2500,
            "lines": [{"product_id": "p1", "quantity": 2, "payable_fen": 2000},
                      {"product_id": "p2", "quantity": 1, "payable_fen": 500}], **extra}


def _keys(derived):
    return sorted(unit.key for unit in derived.units)


def test_an_inserted_order_is_placed_once_with_its_products_and_an_order_stage_visitor():
    derived = analytics.order_units(None, _order(), T0)
    assert _keys(derived) == ["o:o1:placed", "u:2024-05-01:order:total:u1"]
    placed = derived.units[0]
    assert placed.counts[("2024-05-01", "total")] == {"orders": 1, "order_fen": 2500}
    assert placed.counts[("2024-05-01", "product#p1")] == {"orders": 1, "ordered_units": 2}


def test_paying_counts_gmv_per_day_of_paid_at_products_and_the_customer():
    paid_at = T0 + timedelta(hours=15)  # 2024-05-02 01:00 in Shanghai
    derived = analytics.order_units(_order(), _order("paid", paid_at=_stamp(paid_at), prepay={"prepay_id": "x"}), paid_at)
    by_key = {unit.key: unit for unit in derived.units}
    assert set(by_key) == {"o:o1:paid", "o:o1:pay_requested", "u:2024-05-02:paid:total:u1"}
    paid = by_key["o:o1:paid"]
    assert paid.counts[("2024-05-02", "total")] == {"paid_orders": 1, "gmv_fen": 2500}
    assert paid.counts[("2024-05-02", "product#p2")] == {"paid_orders": 1, "paid_units": 1, "paid_fen": 500}
    assert paid.customer == ("u1", {"orders_paid": 1, "monetary_fen": 2500}, ("2024-05",))
    assert derived.paid_days == [analytics.PaidDay("u1", "2024-05-02")]


def test_a_change_that_moves_nothing_counted_counts_nothing():
    assert analytics.order_units(_order("paid"), _order("shipped"), T0).units == []
    assert analytics.order_units(_order("paid"), None, T0).units == []  # a deletion


def test_cancel_refund_and_full_refund_are_separate_events_keyed_by_what_they_moved():
    cancelled = analytics.order_units(_order(), _order("cancelled", cancel_reason="timeout"), T0)
    assert _keys(cancelled) == ["o:o1:cancelled"]
    assert cancelled.units[0].counts[("2024-05-01", "total")] == {"cancelled": 1, "cancelled_timeout": 1}
    partial = analytics.order_units(_order("paid"), _order("paid", refunded_fen=500), T0)
    assert _keys(partial) == ["o:o1:refund:500"]
    assert partial.units[0].customer == ("u1", {"monetary_fen": -500, "refund_fen": 500}, ())
    full = analytics.order_units(_order("paid", refunded_fen=500), _order("refunded", refunded_fen=2500), T0)
    assert _keys(full) == ["o:o1:refund:2500", "o:o1:refunded"]
    assert full.units[0].counts[("2024-05-01", "total")] == {"refunds": 1, "refund_fen": 2000}


def test_a_late_payment_reviving_a_cancelled_order_counts_as_paid():
    assert "o:o1:paid" in _keys(analytics.order_units(_order("cancelled"), _order("paid"), T0))


def test_a_tracking_event_counts_on_total_source_product_and_its_funnel_stages():
    event = {"user_id": "u1", "event_id": "ev-00001", "kind": "add_to_cart", "at_ms": int(T0.timestamp() * 1000),
             "source": "scene_1007", "product_id": "p1", "quantity": 3}
    derived = analytics.event_units(event)
    unit = derived.units[0]
    assert unit.key == "e:u1:ev-00001"
    assert unit.counts[("2024-05-01", "total")] == {"add_to_cart": 1, "cart_units": 3}
    assert unit.counts[("2024-05-01", "source#scene_1007")] == {"add_to_cart": 1, "cart_units": 3}
    assert unit.counts[("2024-05-01", "product#p1")] == {"add_to_cart": 1}
    assert sorted(u.key for u in derived.units[1:]) == [
        "u:2024-05-01:cart:source#scene_1007:u1", "u:2024-05-01:cart:total:u1",
        "u:2024-05-01:exposure:source#scene_1007:u1", "u:2024-05-01:exposure:total:u1"]


def test_client_time_counts_only_when_plausible():
    assert analytics.counted_at(T0 - timedelta(days=6), T0) == T0 - timedelta(days=6)
    assert analytics.counted_at(T0 - timedelta(days=8), T0) == T0
    assert analytics.counted_at(T0 + timedelta(minutes=10), T0) == T0
    assert analytics.source_key(None, 1007) == "scene_1007" and analytics.source_key("poster", 1007) == "poster"
    assert analytics.source_key(None, None) == "direct"


# --- RFM ---------------------------------------------------------------------------------------------

TODAY = date(2024, 6, 30)


def _customer(user, orders, fen, first, last, months=None):
    return rfm.Customer(user, orders, fen, date.fromisoformat(first), date.fromisoformat(last),
                        frozenset(months or {first[:7], last[:7]}), paid_orders=orders)


KNOWN = [  # five customers, each best or worst at something
    _customer("a", 6, 90000, "2024-01-05", "2024-06-28"),
    _customer("b", 3, 30000, "2024-03-10", "2024-06-01"),
    _customer("c", 1, 5000, "2024-06-20", "2024-06-20"),
    _customer("d", 2, 20000, "2024-01-20", "2024-03-01"),
    _customer("e", 1, 1000, "2024-01-02", "2024-01-02"),
]


def test_rfm_scores_segments_and_stages_on_a_known_dataset():
    scores = {s.user_id: s for s in rfm.score_all(KNOWN, TODAY)}
    assert [(s.r, s.f, s.m) for s in (scores[u] for u in "abcde")] == [
        (5, 5, 5), (3, 4, 4), (4, 1, 2), (2, 3, 3), (1, 1, 1)]
    assert {u: scores[u].segment for u in "abcde"} == {"a": "champions", "b": "loyal", "c": "new",
                                                         "d": "at_risk", "e": "hibernating"}
    assert {u: scores[u].stage for u in "abcde"} == {"a": "mature", "b": "growth", "c": "introduction",
                                                       "d": "decline", "e": "decline"}
    assert scores["d"].recency_days == 121  # two orders, but none for more than 90 days


def test_lifecycle_declines_after_ninety_days_without_payment():
    assert rfm.stage(orders=5, recency_days=91) == "decline"
    assert rfm.stage(orders=5, recency_days=90) == "mature"
    assert rfm.stage(orders=1, recency_days=0) == "introduction"


def test_cohorts_count_repurchase_and_retention_by_month_offset():
    cohorts = {c.month: c for c in rfm.cohorts(KNOWN)}
    assert sorted(cohorts) == ["2024-01", "2024-03", "2024-06"]
    january = cohorts["2024-01"]
    assert (january.customers, january.repurchased) == (3, 2)  # a and d bought again; e did not
    assert january.retention[:5] == (0, 1, 0, 0, 1)  # d in March (+2), a in June (+5)
    assert cohorts["2024-06"].repurchased == 0


def test_quintiles_give_ties_the_same_score_and_a_lone_customer_one():
    assert rfm.quintile([5], 5) == 1
    assert [rfm.quintile([1, 1, 1, 1, 9], v) for v in (1, 9)] == [1, 5]


# --- alerts ------------------------------------------------------------------------------------------

def test_cancel_rate_fires_above_the_threshold_with_enough_orders_once_per_day_window():
    rule = alert_rules.DEFAULTS["cancel_rate"]
    quiet = alert_rules.Metrics(orders=19, cancelled=10)
    assert alert_rules.evaluate(rule, quiet, T0) is None  # too few orders
    assert alert_rules.evaluate(rule, alert_rules.Metrics(orders=100, cancelled=8), T0) is None  # 8% is not > 8%
    firing = alert_rules.evaluate(rule, alert_rules.Metrics(orders=100, cancelled=9), T0)
    assert (firing.value, firing.window) == (90, "2024-05-01")
    later = alert_rules.evaluate(rule, alert_rules.Metrics(orders=100, cancelled=20), T0 + timedelta(hours=5))
    assert later.window == firing.window


def test_pay_success_refund_spike_notify_and_dead_letter_rules():
    now = T0
    pay = alert_rules.evaluate(alert_rules.DEFAULTS["pay_success_rate"], alert_rules.Metrics(pay_requests=40, paid_orders=10), now)
    assert pay.value == 250
    spike = alert_rules.Metrics(refund_fen=40000, baseline_refund_fen=(10000,) * 7)
    assert alert_rules.evaluate(alert_rules.DEFAULTS["refund_spike"], spike, now).value == 4000
    assert alert_rules.evaluate(alert_rules.DEFAULTS["refund_spike"],
                                alert_rules.Metrics(refund_fen=20000, baseline_refund_fen=(10000,) * 7), now) is None
    notify = alert_rules.evaluate(alert_rules.DEFAULTS["notify_failures"], alert_rules.Metrics(notify_failures=3), now)
    assert notify.window == "2024-05-01T10"
    assert alert_rules.evaluate(alert_rules.DEFAULTS["dead_letter_depth"], alert_rules.Metrics(dead_letters=1), now)
    disabled = alert_rules.change(alert_rules.DEFAULTS["dead_letter_depth"], False, None, None)
    assert alert_rules.evaluate(disabled, alert_rules.Metrics(dead_letters=9), now) is None
    with pytest.raises(ValueError):
        alert_rules.change(alert_rules.DEFAULTS["cancel_rate"], None, 1001, None)


# --- reports -----------------------------------------------------------------------------------------

def test_a_report_range_is_ordered_and_at_most_92_days():
    reports.check_range(date(2024, 1, 1), date(2024, 4, 1))  # 92 days
    for first, last in ((date(2024, 1, 1), date(2024, 4, 2)), (date(2024, 2, 1), date(2024, 1, 31)),
                        (date(1999, 12, 31), date(2000, 1, 1))):
        with pytest.raises(ValueError):
            reports.check_range(first, last)


def test_csv_has_a_header_and_defuses_formulas():
    text = reports.to_csv(("name", "n"), [{"name": "=HYPERLINK(1)", "n": 3}, {"name": "苹果, 5斤", "n": None}])
    assert text == "name,n\r\n'=HYPERLINK(1),3\r\n\"苹果, 5斤\",\r\n"
