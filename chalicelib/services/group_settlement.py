"""Group-buys (拼团) that fail: a group whose window ends unfilled (or whose leader never paid)
refunds each paid member in full through the refund API, once, and closes its unpaid orders.

A per-group timer message (on the order-timers queue: jobs/orders.py) and a one-minute sweep over
the groups' sparse timer index (jobs/group_buys.py) both run `settle_if_due`; every step is
conditional (the group's status and places as read; the refund's out_refund_no, derived from the
order, created on condition it is new, with the member's place moving paid -> refunding in the
same transaction), so racing they refund each member once. A failed group with members still to
settle (WeChat could not confirm an order unpaid) keeps its timer, a minute on, for the sweep.
"""
from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta

from chalicelib import clock, queues
from chalicelib.domain import group_buy as rules
from chalicelib.log import get_logger
from chalicelib.schemas.timers import GroupTimer
from chalicelib.services import order_lifecycle, payments, refunds
from chalicelib.storage import group_buys as store
from chalicelib.storage import orders, transactions
from chalicelib.storage.group_buys import Group, Member

log = get_logger(__name__)
FAIL_ATTEMPTS = 3
SETTLE_RETRY = timedelta(minutes=1)  # a failed group with members still to settle: the sweep looks again
SWEEP_LIMIT = 50



def schedule(group_id: str, due_at: datetime) -> None:
    """The group's timer message (SQS delays at most 15 minutes: it is re-queued until due).
    Never raises: the sweep finds the group by its timer index if the message is lost."""
    delay = math.ceil(min(max(0.0, (due_at - clock.now()).total_seconds()), queues.MAX_DELAY_SECONDS))
    try:
        queues.send_message(queues.ORDER_TIMERS, GroupTimer(group_id=group_id, due_at=due_at).model_dump(mode="json"),
                            delay)
    except Exception:  # noqa: BLE001 - see docstring
        log.exception("could not queue the group's timer; the sweep will find it", group_id=group_id)


def handle_timer(timer: GroupTimer) -> str:
    if clock.now() < timer.due_at:
        schedule(timer.group_id, timer.due_at)
        return "requeued"
    return settle_if_due(timer.group_id)


def sweep_due_groups(limit: int = SWEEP_LIMIT) -> dict[str, int]:
    """The safety net behind the timers: every group whose timer is due (an index Query)."""
    outcomes: dict[str, int] = {}
    for group_id in store.due_group_ids(clock.now(), limit):
        outcome = settle_if_due(group_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def settle_if_due(group_id: str) -> str:
    """Fail the group if its time is up, then refund its paid members and close its unpaid
    orders. Timer and sweep may both run it: every step is conditional, so each refund is made once."""
    for _ in range(FAIL_ATTEMPTS):
        group, now = store.get_group(group_id), clock.now()
        if group is None:
            return "missing"
        if group.status == rules.SUCCEEDED:
            return "succeeded"
        if group.status == rules.FAILED:
            return _settle_failed(group, now)
        if not rules.due_to_fail(group.status, group.expires_at, group.timer_at, now):
            if group.status == rules.OPEN and group.timer_at != group.expires_at:
                store.set_timer(group_id, group.expires_at, rules.OPEN)
            return "not_due"
        if store.fail(group, now):
            log.info("group failed", group_id=group_id, paid_count=group.paid_count, size=group.size)
            return _settle_failed(replace(group, status=rules.FAILED), now)
    return "busy"


def _settle_failed(group: Group, now: datetime) -> str:
    outstanding = 0
    for member in store.members(group.group_id):
        if member.status == store.PAID:
            _refund_member(group, member)
        elif member.status == store.PENDING and not _close_unpaid(member):
            outstanding += 1
    store.set_timer(group.group_id, now + SETTLE_RETRY if outstanding else None, rules.FAILED)
    return "settling" if outstanding else "failed"


def _refund_member(group: Group, member: Member) -> None:
    """The paid member's money back in full (what is left of it), once: the refund record is
    created on condition it is new, with the place moving paid -> refunding."""
    order = orders.get_order(member.order_id)
    if order is None or order.status != "paid" or not order.transaction_id:
        return
    amount = order.payable_fen - order.refunded_fen
    if amount <= 0:
        return
    refund = refunds.new_refund(order, order.transaction_id, amount, "拼团未成团,自动退款",
                                lines=tuple((line.sku_id, line.quantity) for line in order.lines),
                                out_refund_no=f"GF{order.order_id}")
    try:
        store.start_member_refund(member, group.activity_id, refund)
    except store.RefundTaken:
        return  # the other of timer and sweep recorded it (and asked WeChat)
    log.info("failed group's member refunded", group_id=group.group_id, order_id=order.order_id, amount_fen=amount)
    refunds.submit_refund(refund, order)  # a failure leaves it to the refund retry job


def _close_unpaid(member: Member) -> bool:
    """Close the member's unpaid order now (its own pay timer would, later). False when WeChat
    could not confirm it is unpaid: the settle is tried again by the sweep."""
    order = orders.get_order(member.order_id)
    if order is None or order.status != "pending_payment":
        return True  # paid (it then led a new group) or closed meanwhile
    settled = payments.settle_with_wechat(order)
    if settled == "unavailable":
        return False
    if settled == "paid":
        return True
    try:
        order_lifecycle.release_unpaid(order, "group_failed")
    except transactions.StatusChanged:
        return True  # paid or closed meanwhile
    order_lifecycle.stock_released(order)  # back above a low-stock threshold: may alert again
    return True
