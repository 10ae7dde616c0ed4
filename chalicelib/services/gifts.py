"""Coupons given, not claimed: the new-user gift (at login) and the birthday gift (a daily job).

Each active template of the channel gives the user up to its `per_user_limit` coupons (usually
1), through the same claim transaction as everywhere (services/coupons.issue_coupon): the
per-user counter in the wallet makes a gift exact, so a repeated login or a job run twice
gives nothing more.

- new_user: at every login during the first NEW_USER_HOURS after the user's first login
  (`created_at`); counted under the template id, so once per user ever. A login after that
  window costs nothing; within it, one wallet read (plus the claims when something is due).
- birthday: every day at 00:05 Asia/Shanghai, for the users listed under today's MM-DD in
  `user_birthdays` (one partition; Feb 29 birthdays are served on Feb 28 in other years);
  counted under "<template_id>#<year>", so once per year.
- share: to the referrer (services/referrals.py) when an invitee's order becomes paid
  (`reward_referrer`, from services/payments.py); counted under "<template_id>#<invitee id>"
  with a limit of 1 whatever the template's per_user_limit, so one coupon per template per
  invitee: the invitee's first paid order placed after the binding earns it, later ones nothing.

Gifts never fail what triggered them: a failure is logged and the next login or run retries.
"""
from __future__ import annotations

import threading
from calendar import isleap
from collections import Counter
from dataclasses import replace
from datetime import date, datetime, timedelta
from time import monotonic
from typing import TYPE_CHECKING

from chalicelib import clock
from chalicelib.errors import AppError
from chalicelib.log import get_logger
from chalicelib.services.coupons import issue_coupon
from chalicelib.storage import coupons, users
from chalicelib.storage.coupons import CouponTemplate

if TYPE_CHECKING:
    from chalicelib.storage.orders import Order

log = get_logger(__name__)

NEW_USER_HOURS = 24
TEMPLATE_CACHE_SECONDS = 30.0  # the channel's templates, as a warm container last read them
_cache_lock = threading.Lock()
_templates: dict[str, tuple[float, list[CouponTemplate]]] = {}


def forget_cached_templates() -> None:
    with _cache_lock:
        _templates.clear()


def _open_templates(channel: str, now: datetime) -> list[CouponTemplate]:
    with _cache_lock:
        cached = _templates.get(channel)
    if cached is None or monotonic() - cached[0] >= TEMPLATE_CACHE_SECONDS:
        cached = (monotonic(), coupons.templates_of_channel(channel))
        with _cache_lock:
            _templates[channel] = cached
    return [template for template in cached[1] if template.claim_open(channel, now) and template.remaining > 0]


def give_new_user_gifts(user_id: str, created_at: datetime, now: datetime | None = None) -> int:
    """At login: the new_user templates' coupons the user has not had yet. Returns how many were given."""
    now = now or clock.now()
    if now - created_at >= timedelta(hours=NEW_USER_HOURS):
        return 0
    templates = _open_templates("new_user", now)
    if not templates:
        return 0
    outcomes = _give(user_id, templates, "new_user", lambda template: template.template_id)
    if outcomes["given"]:
        log.info("new-user gift given", user_id=user_id, coupons=outcomes["given"])
    return outcomes["given"]


def give_birthday_gifts(now: datetime | None = None) -> dict[str, int]:
    """The daily run: birthday coupons for everyone born on today's date (Asia/Shanghai)."""
    now = now or clock.now()
    today = now.astimezone(clock.CHINA_TZ).date()
    templates = [template for template in coupons.templates_of_channel("birthday")
                 if template.claim_open("birthday", now) and template.remaining > 0]
    totals: Counter[str] = Counter()
    if not templates:
        return dict(totals)
    for month_day in birthday_keys(today):
        for user_id in users.users_born_on(month_day):
            totals["users"] += 1
            totals.update(_give(user_id, templates, "birthday", lambda template: f"{template.template_id}#{today.year}"))
    log.info("birthday gifts given", day=today.isoformat(), **totals)
    return dict(totals)


def reward_referrer(order: Order, now: datetime | None = None) -> int:
    """The order just became paid (or was revived by a late payment): if its buyer was invited
    (users.referrer_id), give the referrer one coupon of each open `share` template, once per
    invitee. Returns how many were given.

    Cheap when there is nothing to give: the share templates come from the per-container cache
    (no read while none is open), then one read of the invitee's user item; an order placed
    before the binding earns nothing (the share did not bring it).

    Best-effort, by choice: it runs inline after the payment's transaction, not in it nor from a
    queue, so a crash (or a failed write) between the payment and the grant loses that reward
    for good; the payment's later notifies are duplicates and do not retry it (a revive rewards
    too). A failure is logged, never raised to the payment: the caller also guards it."""
    now = now or clock.now()
    templates = _open_templates("share", now)
    if not templates:
        return 0
    invitee = users.get_user(order.user_id)
    if invitee is None or not invitee.referrer_id or invitee.referrer_id == order.user_id:
        return 0
    if invitee.referred_at is None or order.created_at < invitee.referred_at:
        return 0
    outcomes = _give(invitee.referrer_id, templates, "share",
                     lambda template: f"{template.template_id}#{order.user_id}", limit=1)
    if outcomes["given"] or outcomes["failed"]:
        log.info("share reward", referrer_id=invitee.referrer_id, invitee_id=order.user_id,
                 order_id=order.order_id, **outcomes)
    return outcomes["given"]


def birthday_keys(today: date) -> list[str]:
    """The MM-DD partitions celebrated today: Feb 29 birthdays on Feb 28 of common years."""
    keys = [today.strftime("%m-%d")]
    if keys[0] == "02-28" and not isleap(today.year):
        keys.append("02-29")
    return keys


def _give(user_id: str, templates: list[CouponTemplate], channel: str, claim_key,
          limit: int | None = None) -> Counter[str]:
    """Up to each template's per-user limit (or `limit`) under its claim key; a refusal ends that template."""
    outcomes: Counter[str] = Counter()
    try:
        wallet = coupons.get_wallet(user_id)
    except Exception:  # noqa: BLE001 - a gift never fails its trigger
        log.exception("gift: wallet unreadable", user_id=user_id, channel=channel)
        outcomes["failed"] += 1
        return outcomes
    for template in templates:
        key, key_limit = claim_key(template), template.per_user_limit if limit is None else limit
        for _ in range(key_limit - wallet.claimed(key)):
            try:
                issue_coupon(user_id, template.template_id, channel=channel, claim_key=key, limit=key_limit,
                             wallet=wallet, template=template)
                outcomes["given"] += 1
                wallet = replace(wallet, exists=True)  # created by the first claim
            except AppError as error:  # sold out, limit reached (a concurrent login), closed, busy
                outcomes[error.code] += 1
                break
            except Exception:  # noqa: BLE001
                log.exception("gift: claim failed", user_id=user_id, template_id=template.template_id)
                outcomes["failed"] += 1
                break
    return outcomes
