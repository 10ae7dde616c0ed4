"""Member levels: spend recorded exactly once by the completion's transaction and, for money
refunded after completion, the refund's (ExtraUpdates below), the level computed from it when needed (domain/members.py), the merchant's
rules, and the nightly prune of days no window reaches.
"""
from __future__ import annotations

from datetime import datetime

from chalicelib import clock
from chalicelib.domain import members as rules
from chalicelib.errors import Conflict
from chalicelib.log import get_logger
from chalicelib.storage import members as store
from chalicelib.storage.orders import Order
from chalicelib.storage.transactions import ExtraUpdate

log = get_logger(__name__)
PRUNE_PAGE = 100
PRUNE_MAX_PAGES = 1000  # 100,000 members a night; the rest the next night


class SpendNotRecorded(Exception):
    """Never raised by DynamoDB for an ADD without a condition; named for ExtraUpdate's sake."""


def china_day(moment: datetime):
    return moment.astimezone(clock.CHINA_TZ).date()


def spend_on_completion(order: Order, now: datetime) -> list[ExtraUpdate]:
    """A completed order's money, less what was refunded before, counts towards its buyer's level
    from the day it completed (成长值 on 交易完成: a level is not bought and refunded away), in the
    completion's own transaction, which is conditioned on the refunded total as read."""
    counted = order.payable_fen - order.refunded_fen
    if counted <= 0:
        return []
    return [ExtraUpdate(store.spend_change(order.user_id, counted, china_day(now)), SpendNotRecorded())]


def spend_refunded(order: Order, refunded_fen: int) -> list[ExtraUpdate]:
    """Money refunded after the order completed comes off the day its completion counted on (a
    refund before completion was never counted: the completion counts what is left)."""
    if refunded_fen <= 0 or order.status != "completed" or order.completed_at is None:
        return []
    return [ExtraUpdate(store.spend_change(order.user_id, -refunded_fen, china_day(order.completed_at)),
                        SpendNotRecorded())]


def membership_of(spend: rules.Spend, level_rules: tuple[rules.LevelRule, ...]) -> rules.Membership:
    return rules.membership(spend, level_rules, china_day(clock.now()))


def membership(user_id: str) -> rules.Membership:
    return membership_of(store.get_spend(user_id), store.get_rules()[0])


def level_rules() -> tuple[tuple[rules.LevelRule, ...], int]:
    return store.get_rules()


def change_rules(changes: list[rules.LevelRule], admin: str) -> tuple[tuple[rules.LevelRule, ...], int]:
    """Replace the rules of the levels named (the others kept), checked together: a higher level
    may not ask less than a lower one of the same window nor give a smaller discount."""
    current, version = store.get_rules()
    by_level = {rule.level: rule for rule in current}
    by_level.update({rule.level: rule for rule in changes})
    updated = tuple(by_level[level] for level in rules.LEVELS if level in by_level)
    _check_order(updated)
    try:
        version = store.save_rules(updated, version, clock.now(), admin)
    except store.ConditionFailed:
        raise Conflict("The member levels were changed meanwhile; read them again", code="version_conflict") from None
    log.info("member levels changed", by=admin, version=version)
    return updated, version


def _check_order(level_rules: tuple[rules.LevelRule, ...]) -> None:
    from chalicelib.errors import BadRequest

    for lower, higher in zip(level_rules, level_rules[1:]):
        if higher.discount_permille > lower.discount_permille:
            raise BadRequest(f"{higher.level} must discount at least as much as {lower.level}", code="invalid_levels",
                             details=[{"field": "levels", "message": "discount_permille must not rise with the level"}])
        if higher.window_days == lower.window_days and higher.threshold_fen <= lower.threshold_fen:
            raise BadRequest(f"{higher.level} must ask more spend than {lower.level}", code="invalid_levels",
                             details=[{"field": "levels", "message": "threshold_fen must rise with the level"}])


def prune_old_days() -> dict[str, int]:
    """The nightly job: drop the spend days older than any window (they no longer count)."""
    first_kept = rules.oldest_day_kept(store.get_rules()[0], china_day(clock.now()))
    outcome = {"members": 0, "days_dropped": 0}
    start = None
    for _ in range(PRUNE_MAX_PAGES):
        page, start = store.scan_spend(PRUNE_PAGE, start)
        for user_id, spend in page:
            outcome["members"] += 1
            outcome["days_dropped"] += store.drop_days_before(user_id, first_kept, spend)
        if not start:
            break
    return outcome
