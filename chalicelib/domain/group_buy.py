"""Group-buy (拼团) rules: what a payment does to its group, and when a group is due to fail.

States: `opening` (the leader's order is unpaid) -> `open` (the leader paid; members join by
paying) -> `succeeded` (the payment that fills the last place) | `failed` (the window ended
first, or the leader never paid). Places are taken by payments only, each by a conditional
counter in the payment's own transaction (storage/group_buys.py), so a group never has more
paid members than its size.

A payment whose group can no longer take it (full, succeeded, failed, or past its window) is
never refused: its order becomes the leader of a new group of the same activity at the price it
was placed at (REOPEN). The new group's window is cut at the activity's end, so after the end
it is due at once and its payer is refunded automatically by the expiry, like any failed group.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

OPENING, OPEN, SUCCEEDED, FAILED = "opening", "open", "succeeded", "failed"
ACCEPTING = (OPENING, OPEN)
MIN_GROUP_SIZE, MAX_GROUP_SIZE = 2, 10  # a filling payment un-flags every member's order in one transaction
LEADER_GRACE = timedelta(minutes=1)  # an opening group fails this long after its leader's pay deadline


class PaymentPlan(str, Enum):
    LEAD = "lead"  # the leader's payment: opening -> open, one place taken
    JOIN = "join"  # a member's payment that leaves places open
    FILL = "fill"  # the payment that takes the last place: -> succeeded
    REOPEN = "reopen"  # the group cannot take it: the order leads a new group


@dataclass(frozen=True)
class GroupFacts:
    """What a decision needs of a group, as read (consistently) before the conditional write."""
    status: str
    paid_count: int
    size: int
    expires_at: datetime
    leader_order_id: str


def plan_payment(group: GroupFacts | None, order_id: str, now: datetime) -> PaymentPlan:
    """What the payment of `order_id` (an order of this group, or of a group that is gone) does.
    The write that follows is conditioned on exactly the facts this read, so a stale read fails
    the write and is decided again, never applied."""
    if group is None or group.status not in ACCEPTING or now >= group.expires_at:
        return PaymentPlan.REOPEN
    if group.status == OPENING:
        return PaymentPlan.LEAD if group.leader_order_id == order_id else PaymentPlan.REOPEN
    if group.paid_count >= group.size:
        return PaymentPlan.REOPEN
    return PaymentPlan.FILL if group.paid_count == group.size - 1 else PaymentPlan.JOIN


def reopened_window_end(now: datetime, window: timedelta, activity_ends_at: datetime | None) -> datetime:
    """Where a new group opened by a payment ends: its window, cut at the activity's end (a
    group whose activity has ended, or is gone, is due at once and refunded)."""
    if activity_ends_at is None:
        return now
    return max(now, min(now + window, activity_ends_at))


def opening_deadline(leader_pay_deadline: datetime) -> datetime:
    """When an opening group whose leader has not paid fails (checked by timer and sweep)."""
    return leader_pay_deadline + LEADER_GRACE


def due_to_fail(status: str, expires_at: datetime, timer_at: datetime | None, now: datetime) -> bool:
    """An accepting group fails when its window ends, or (opening) when its leader's time is up."""
    if status not in ACCEPTING:
        return False
    return now >= expires_at or (status == OPENING and timer_at is not None and now >= timer_at)


def places_left(status: str, paid_count: int, size: int) -> int:
    return max(0, size - paid_count) if status in ACCEPTING else 0
