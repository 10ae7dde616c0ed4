"""RFM scores, segments, lifecycle stages and monthly-cohort repurchase, pure.

Input: one summary per customer who ever paid (kept incrementally from the orders stream:
paid orders, fully refunded orders, paid-minus-refunded fen, the months paid in, the first and
last paid day). Output: per customer R, F, M scores of 1..5 by quintile among all customers,
a segment and a lifecycle stage; per cohort (the month of the first payment) its size and how
many bought again.

- Recency R: days since the last payment; fewer days score higher.
- Frequency F: paid orders not fully refunded.
- Monetary M: fen paid minus fen refunded.
A value's score is 1 + the share of customers with a strictly worse value, in fifths: ties
score alike, and one customer alone scores 1 (nothing to compare with).

Segments (R, and FM = the mean of F and M rounded down):
  champions   R >= 4 and FM >= 4      loyal        R >= 3 and FM >= 3
  new         R >= 4 and F == 1 order at_risk      R <= 2 and FM >= 3
  hibernating R <= 2 and FM <= 2      potential    everyone else
Lifecycle stages: decline (no payment for more than DECLINE_AFTER_DAYS), else introduction
(one order), growth (2-3 orders), mature (4 or more).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date

SEGMENTS = ("champions", "loyal", "new", "potential", "at_risk", "hibernating")
STAGES = ("introduction", "growth", "mature", "decline")
DECLINE_AFTER_DAYS = 90
MATURE_ORDERS = 4
MAX_COHORT_OFFSETS = 12  # months after the first payment shown in a cohort's retention row


@dataclass(frozen=True)
class Customer:
    user_id: str
    orders: int  # paid orders not fully refunded
    monetary_fen: int
    first_paid: date
    last_paid: date
    months: frozenset[str]  # YYYY-MM of every payment
    paid_orders: int = 0  # every paid order, refunded or not (a repurchase is a second payment)


@dataclass(frozen=True)
class Score:
    user_id: str
    recency_days: int
    r: int
    f: int
    m: int
    segment: str
    stage: str


@dataclass(frozen=True)
class Cohort:
    month: str
    customers: int
    repurchased: int  # who paid for 2 or more orders
    retention: tuple[int, ...]  # customers paying again in month +1, +2, ... after the cohort's


def quintile(sorted_values: list[int], value: int) -> int:
    """1..5: 1 + five times the share of values strictly below `value`, rounded down."""
    if not sorted_values:
        return 1
    below = bisect.bisect_left(sorted_values, value)
    return 1 + min(4, 5 * below // len(sorted_values))


def segment(r: int, f: int, m: int, orders: int) -> str:
    fm = (f + m) // 2
    if r >= 4 and fm >= 4:
        return "champions"
    if r >= 4 and orders == 1:
        return "new"
    if r >= 3 and fm >= 3:
        return "loyal"
    if r <= 2 and fm >= 3:
        return "at_risk"
    if r <= 2:
        return "hibernating"
    return "potential"


def stage(orders: int, recency_days: int) -> str:
    if recency_days > DECLINE_AFTER_DAYS:
        return "decline"
    if orders <= 1:
        return "introduction"
    return "growth" if orders < MATURE_ORDERS else "mature"


def score_all(customers: list[Customer], today: date) -> list[Score]:
    """Every customer's scores against all the others."""
    recency = {c.user_id: max(0, (today - c.last_paid).days) for c in customers}
    # Higher is better for each sorted list: recency negated.
    r_values = sorted(-days for days in recency.values())
    f_values = sorted(c.orders for c in customers)
    m_values = sorted(c.monetary_fen for c in customers)
    scores = []
    for customer in customers:
        days = recency[customer.user_id]
        r, f, m = quintile(r_values, -days), quintile(f_values, customer.orders), quintile(m_values, customer.monetary_fen)
        scores.append(Score(customer.user_id, days, r, f, m, segment(r, f, m, customer.orders),
                            stage(customer.orders, days)))
    return scores


def thresholds(sorted_values: list[int]) -> list[int]:
    """The values at the 20/40/60/80% marks (what a score boundary looks like), for the report."""
    if not sorted_values:
        return []
    return [sorted_values[min(len(sorted_values) - 1, len(sorted_values) * k // 5)] for k in range(1, 5)]


def month_offset(first: str, later: str) -> int:
    (y1, m1), (y2, m2) = (map(int, first.split("-")), map(int, later.split("-")))
    return (y2 - y1) * 12 + (m2 - m1)


def cohorts(customers: list[Customer]) -> list[Cohort]:
    """Customers grouped by the month of their first payment, oldest first."""
    groups: dict[str, list[Customer]] = {}
    for customer in customers:
        groups.setdefault(customer.first_paid.isoformat()[:7], []).append(customer)
    result = []
    for month in sorted(groups):
        members = groups[month]
        retention = [0] * MAX_COHORT_OFFSETS
        for customer in members:
            for paid_month in customer.months:
                offset = month_offset(month, paid_month)
                if 1 <= offset <= MAX_COHORT_OFFSETS:
                    retention[offset - 1] += 1
        result.append(Cohort(month, len(members), sum(1 for c in members if max(c.paid_orders, c.orders) >= 2), tuple(retention)))
    return result
