"""The 15-minute alert evaluation (an injected cancel spike fires exactly one alert per window)
and the nightly RFM job (scores, segments, cohorts from the per-customer summaries), on moto."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from chalicelib import clock, queues
from chalicelib.services import alert_rules, analytics, reports, rfm
from chalicelib.storage import alerts
from chalicelib.storage import rfm as customers
from tests.services.analytics_records import evolve, order_change
from tests.storage.order_fixtures import make_order

NOW = datetime(2024, 5, 1, 4, 0, tzinfo=timezone.utc)  # 12:00 in Shanghai


def _business_alerts() -> list:
    return alerts.list_alerts("business_alert", 100, None)[0]


def _cancel_spike(orders: int, cancelled: int, prefix: str = "o") -> None:
    records = []
    for n in range(orders):
        placed = make_order(f"{prefix}{n}", {"s1": 1}, user_id=f"u{n}")
        records.append(order_change(None, placed))
        if n < cancelled:
            records.append(order_change(placed, evolve(placed, status="cancelled", cancelled_at=clock.now(),
                                                       cancel_reason="user")))
    analytics.consume(records)


def test_a_cancel_spike_fires_exactly_one_alert_per_day(aws):
    with clock.frozen_at(NOW) as advance:
        _cancel_spike(20, 1)
        assert alert_rules.evaluate()["fired"] == []  # 5% is under 8%
        _cancel_spike(5, 5, prefix="x")  # 6 of 25: 24%
        outcomes = [alert_rules.evaluate() for _ in range(3)]
        advance(timedelta(minutes=15))
        outcomes.append(alert_rules.evaluate())
    assert [o["recorded"] for o in outcomes] == [["cancel_rate"], [], [], []]
    assert all(o["fired"] == ["cancel_rate"] for o in outcomes)
    [alert] = _business_alerts()
    assert alert.detail == {"rule": "cancel_rate", "window": "2024-05-01", "value": 240, "threshold": 80,
                            "orders": 25, "cancelled": 6}
    with clock.frozen_at(NOW + timedelta(days=1)):  # a new day: its own window, and no spike in it
        assert alert_rules.evaluate()["fired"] == []
    assert len(_business_alerts()) == 1


def test_a_disabled_rule_stays_quiet_and_the_other_rules_fire_on_their_own_metrics(aws, monkeypatch):
    with clock.frozen_at(NOW):
        _cancel_spike(20, 20)
        alert_rules.change_rules([{"rule": "cancel_rate", "enabled": False}], "admin", None)
        client = queues._client()
        client.send_message(QueueUrl=queues.queue_url(queues.NOTIFICATIONS.dead_letter_name), MessageBody="{}")
        for _ in range(3):
            alerts.record_alert("payment_anomaly", clock.now(), detail={"problem": "amount"})
        outcome = alert_rules.evaluate()
    assert sorted(outcome["recorded"]) == ["dead_letter_depth", "notify_failures"]
    windows = {alert.detail["rule"]: alert.detail["window"] for alert in _business_alerts()}
    assert windows == {"dead_letter_depth": "2024-05-01T12", "notify_failures": "2024-05-01T12"}


# --- RFM -------------------------------------------------------------------------------------------

def _paid_orders(user: str, days: list[date], fen: int = 1000) -> list[dict]:
    records = []
    for n, day in enumerate(days):
        moment = datetime(day.year, day.month, day.day, 4, tzinfo=timezone.utc)
        placed = evolve(make_order(f"{user}-{n}", {"s1": 1}, user_id=user, price_fen=fen), created_at=moment)
        records += [order_change(None, placed), order_change(placed, evolve(placed, status="paid", paid_at=moment))]
    return records


def test_the_nightly_job_scores_segments_and_cohorts_from_the_summaries(aws):
    records = (_paid_orders("a", [date(2024, 1, 5), date(2024, 3, 5), date(2024, 6, 1), date(2024, 6, 28)], 5000)
               + _paid_orders("b", [date(2024, 3, 10), date(2024, 6, 1)], 3000)
               + _paid_orders("c", [date(2024, 6, 20)], 2000)
               + _paid_orders("e", [date(2024, 1, 2)], 500))
    analytics.consume(list(reversed(records)))  # out of order: first/last paid days are min/max anyway
    today = date(2024, 6, 30)
    with clock.frozen_at(datetime(2024, 6, 29, 18, 40, tzinfo=timezone.utc)):
        assert rfm.score_customers(today) == {"customers": 4, "changed": 4, "cohorts": 3}
        assert rfm.score_customers(today)["changed"] == 0  # a second run writes no score again
        report = reports.rfm(date(2024, 6, 1), today)
        cohorts = reports.repurchase(date(2024, 1, 1), date(2024, 3, 31))
    a = customers.get_customer("a")
    assert (a["first_paid_day"], a["last_paid_day"], a["orders_paid"]) == ("2024-01-05", "2024-06-28", 4)
    assert (a["segment"], a["stage"]) == ("champions", "mature")
    assert customers.get_customer("e")["stage"] == "decline"
    assert report.computed_on == "2024-06-30" and report.customers == 4
    # Among four: R (2, 29, 10, 180 days) scores a 4, b 2, c 3, e 1; F (4, 2, 1, 1) a 4, b 3, c and e 1;
    # M (20000, 6000, 2000, 500) a 4, b 3, c 2, e 1. So b (R 2, FM 3) is at risk, c (R 3, FM 1) potential.
    assert {row.segment: row.customers for row in report.items if row.customers} == {
        "champions": 1, "at_risk": 1, "potential": 1, "hibernating": 1}
    assert {row.stage: row.customers for row in report.stages} == {
        "introduction": 1, "growth": 1, "mature": 1, "decline": 1}
    assert [(row.cohort, row.customers, row.repurchased, row.rate_permille) for row in cohorts.items] == [
        ("2024-01", 2, 1, 500), ("2024-03", 1, 1, 1000)]
    assert cohorts.items[0].retention[:5] == [0, 1, 0, 0, 1]
    assert rfm.users_in_segment("champions") == (["a"], None)
    with pytest.raises(ValueError):
        rfm.users_in_segment("whales")
