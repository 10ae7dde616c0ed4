"""The customers' order summaries (table `analytics_customers`, storage/analytics.py) as the
nightly RFM job reads and scores them.

The job reads every summary with a Scan of that table: one small item per customer who ever
paid, never the orders. Scores are written back only where they changed (one UpdateItem each),
with the segment the sparse `by_segment` index lists for coupon targeting.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Iterator

from chalicelib.domain.rfm import Customer, Score
from chalicelib.storage.analytics import CustomerRecord

PAGE_SIZE = 500


def customers(max_items: int = 2_000_000) -> Iterator[tuple[Customer, dict[str, Any]]]:
    """Every customer with a first and last paid day, with their stored scores (bounded)."""
    for seen, record in enumerate(CustomerRecord.scan(page_size=PAGE_SIZE)):
        if seen >= max_items:
            return
        if not record.first_paid_day or not record.last_paid_day:
            continue  # a refund seen before its payment's record: nothing to score yet
        paid = int(record.orders_paid or 0)
        yield (Customer(user_id=record.user_id, orders=max(0, paid - int(record.orders_refunded or 0)),
                        monetary_fen=int(record.monetary_fen or 0),
                        first_paid=date.fromisoformat(record.first_paid_day),
                        last_paid=date.fromisoformat(record.last_paid_day),
                        months=frozenset(record.paid_months or ()), paid_orders=paid),
               {"r": record.r, "f": record.f, "m": record.m, "segment": record.segment, "stage": record.stage})


def save_score(score: Score, scored_on: date) -> None:
    """Write the scores (only for a customer who exists: never creates a summary)."""
    CustomerRecord(score.user_id).update(
        actions=[CustomerRecord.r.set(score.r), CustomerRecord.f.set(score.f), CustomerRecord.m.set(score.m),
                 CustomerRecord.segment.set(score.segment), CustomerRecord.stage.set(score.stage),
                 CustomerRecord.scored_on.set(scored_on.isoformat())],
        condition=CustomerRecord.user_id.exists())


def unchanged(score: Score, stored: dict[str, Any]) -> bool:
    return (stored.get("segment") == score.segment and stored.get("stage") == score.stage
            and [int(stored.get(k) or 0) for k in ("r", "f", "m")] == [score.r, score.f, score.m])


def users_in_segment(segment: str, limit: int, start: dict[str, Any] | None = None
                     ) -> tuple[list[str], dict[str, Any] | None]:
    """A page of the user ids in a segment (the keys-only index: eventually consistent, for
    targeting coupons, never for money)."""
    page = CustomerRecord.by_segment.query(segment, limit=limit, last_evaluated_key=start)
    return [record.user_id for record in page], page.last_evaluated_key


def get_customer(user_id: str) -> dict[str, Any] | None:
    try:
        record = CustomerRecord.get(user_id, consistent_read=True)
    except CustomerRecord.DoesNotExist:
        return None
    values = record.attribute_values
    return {name: (int(value) if isinstance(value, float) and value.is_integer() else value)
            for name, value in values.items()}


def erase(user_id: str) -> None:
    """PIPL deletion: the user's order summary and scores (the daily aggregates hold no user)."""
    CustomerRecord(user_id).delete()
