"""The nightly customer scoring: RFM scores, segments, lifecycle stages, cohort repurchase.

Reads every customer's order summary (kept by the analytics consumer; one Scan of that small
table, never the orders), scores them all against each other (domain/rfm.py), writes back the
scores that changed, and stores the day's snapshot that the `rfm` and `repurchase` reports read.
Running it twice a day writes the same snapshot again and no score twice.
"""
from __future__ import annotations

import json
from datetime import date

from chalicelib import clock
from chalicelib.domain import rfm as rules
from chalicelib.log import get_logger
from chalicelib.storage import analytics as aggregates
from chalicelib.storage import rfm as store

log = get_logger(__name__)


def score_customers(today: date | None = None) -> dict[str, int]:
    today = today or clock.now().astimezone(clock.CHINA_TZ).date()
    rows = list(store.customers())
    customers = [customer for customer, _ in rows]
    scores = rules.score_all(customers, today)
    changed = 0
    for score, (_, stored) in zip(scores, rows):
        if not store.unchanged(score, stored):
            store.save_score(score, today)
            changed += 1
    aggregates.put_document(today.isoformat(), "rfm", {"doc": json.dumps(_rfm_summary(customers, scores)),
                                                       "computed_at": clock.to_iso(clock.now())})
    cohorts = [{"cohort": c.month, "customers": c.customers, "repurchased": c.repurchased,
                "retention": list(c.retention)} for c in rules.cohorts(customers)]
    aggregates.put_document(today.isoformat(), "repurchase", {"doc": json.dumps({"cohorts": cohorts}),
                                                              "computed_at": clock.to_iso(clock.now())})
    outcome = {"customers": len(customers), "changed": changed, "cohorts": len(cohorts)}
    log.info("customers scored", **outcome)
    return outcome


def _rfm_summary(customers: list[rules.Customer], scores: list[rules.Score]) -> dict:
    by_user = {customer.user_id: customer for customer in customers}
    segments = {name: [0, 0] for name in rules.SEGMENTS}
    stages = {name: 0 for name in rules.STAGES}
    for score in scores:
        segments[score.segment][0] += 1
        segments[score.segment][1] += by_user[score.user_id].monetary_fen
        stages[score.stage] += 1
    return {"customers": len(customers),
            "segments": [{"segment": name, "customers": n, "monetary_fen": fen} for name, (n, fen) in segments.items()],
            "stages": [{"stage": name, "customers": n} for name, n in stages.items()],
            "thresholds": {"recency_days": rules.thresholds(sorted(s.recency_days for s in scores)),
                           "frequency": rules.thresholds(sorted(c.orders for c in customers)),
                           "monetary_fen": rules.thresholds(sorted(c.monetary_fen for c in customers))}}


def users_in_segment(segment: str, limit: int = 100, start: dict | None = None) -> tuple[list[str], dict | None]:
    """For coupon targeting (the coupons' admin grant by segment): a page of the segment's users."""
    if segment not in rules.SEGMENTS:
        raise ValueError(f"unknown segment {segment}")
    return store.users_in_segment(segment, limit, start)
