"""Points use cases: every change is one ledger entry keyed by its business event, written in
the same transaction as the account change (storage/points.py), so it happens exactly once.

Where each change is written, and why there:
- redeem (checkout): in the order's own TransactWrite (an ExtraUpdate): the order exists iff its
  points were taken; two orders spending the same points: the second's lot conditions fail and
  it answers 409 insufficient_points (after one fresh try);
- return (cancel, timeout): in the cancel transaction, unconditional adds back to the lots the
  order took from (those not expired since);
- retake (a late payment revives a closed order): in the revive transaction, what the close gave
  back, conditioned like a redeem; if the points went meanwhile, the payment is refunded like
  one for sold-out goods;
- refund: in the refund's completion transaction, pro rata to the money (cumulative, so the
  refunds of one order return each point once, and a full refund returns all);
- earn on completion: in the completion transaction (shipped -> completed); for money refunded
  after that, take_back_earned takes them back (as many as the buyer still holds), in its own
  transaction after the refund's completion (services/refunds.py is to call it);
- sign-in and review photos: their own transaction, keyed by the day / the review line.

Money is never held up for points: the changes that give points back are unconditional.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from chalicelib import clock
from chalicelib.domain import points as rules
from chalicelib.errors import Conflict
from chalicelib.log import get_logger
from chalicelib.settings import get_settings
from chalicelib.storage import points as store
from chalicelib.storage.orders import Order
from chalicelib.storage.points import Entry, PointsChange
from chalicelib.storage.transactions import ExtraUpdate

log = get_logger(__name__)
HISTORY_LIMIT = 50
EXPIRY_BATCH = 2_000  # accounts a run (~3 requests each)
EXPIRY_SECONDS = 40.0  # and seconds: the job's Lambda has Chalice's default 60 s


class PointsChanged(Exception):
    """The lots an order was taking from moved meanwhile (another order, an expiry)."""


class PointsNotTaken(Exception):
    """A revived order's points were spent or expired meanwhile: its payment is refunded instead."""


def today_in_china(moment: datetime | None = None) -> date:
    return (moment or clock.now()).astimezone(clock.CHINA_TZ).date()


def policy() -> rules.PointsPolicy:
    return get_settings().points


# --- the order's transactions ------------------------------------------------------------------

def redeem(user_id: str, order_id: str, account: rules.Account, points: int, now: datetime
           ) -> tuple[rules.Parts, list[ExtraUpdate]]:
    """Take `points` for a new order (first to expire first): the parts (kept on the order) and
    the writes for its transaction. Raises NotEnoughPoints."""
    if points <= 0:
        return {}, []
    parts = rules.take(account, points, today_in_china(now))
    change = PointsChange(user_id, Entry(f"redeem#{order_id}", "redeem", -points, order_id, now),
                          {day: -taken for day, taken in parts.items()})
    return parts, _as_extra(change, PointsChanged())


def give_back(order: Order, now: datetime) -> list[ExtraUpdate]:
    """A cancelled or timed-out order's points, back into their lots (not those expired since)."""
    if not order.points_parts:
        return []
    kept, lost = rules.restorable(order.points_parts, today_in_china(now))
    change = PointsChange(order.user_id, Entry(f"return#{order.order_id}", "return", sum(kept.values()),
                                               order.order_id, now, {"expired": lost} if lost else {}), kept)
    return _as_extra(change, PointsChanged())


def take_again(order: Order, now: datetime) -> list[ExtraUpdate]:
    """A late payment revives a closed order: the points its close gave back (its `return`
    entry: not those that had expired by then) are taken again from the lots they went back to
    (conditioned: each lot still holds them). The entry is immutable and committed with the
    close, which the revive's own condition (still cancelled) requires."""
    if not order.points_parts:
        return []
    returned = store.get_entry(order.user_id, f"return#{order.order_id}")
    lots = (returned.detail.get("lots") or {}) if returned else {}
    given_back = {date.fromisoformat(day): int(points) for day, points in lots.items() if int(points) > 0}
    if not given_back:
        return []
    change = PointsChange(order.user_id, Entry(f"retake#{order.order_id}", "redeem", -sum(given_back.values()),
                                               order.order_id, now),
                          {day: -taken for day, taken in given_back.items()})
    return _as_extra(change, PointsNotTaken())


def refund_back(order: Order, out_refund_no: str, refunded_after_fen: int, now: datetime) -> list[ExtraUpdate]:
    """A refund's share of the order's points, pro rata to the money (the longest-lived first)."""
    if not order.points_parts:
        return []
    before, after = rules.refund_share(order.points_used, order.payable_fen, order.refunded_fen, refunded_after_fen)
    if after <= before:
        return []
    kept, lost = rules.restorable(rules.parts_between(order.points_parts, before, after), today_in_china(now))
    change = PointsChange(order.user_id, Entry(f"refund#{out_refund_no}", "refund", sum(kept.values()),
                                               order.order_id, now, {"expired": lost} if lost else {}), kept)
    return _as_extra(change, PointsChanged())


def earn_on_completion(order: Order, now: datetime) -> list[ExtraUpdate]:
    """Points for a completed order, per whole yuan paid and not refunded."""
    earned = rules.earned_for_order(order.payable_fen, order.refunded_fen, policy())
    if earned <= 0:
        return []
    return _as_extra(_earning(order.user_id, f"earn#{order.order_id}", "earn_order", earned, order.order_id, now,
                              detail={"refunded_fen": order.refunded_fen}), PointsChanged())


def take_back_earned(order: Order, out_refund_no: str, refunded_before_fen: int, refunded_after_fen: int) -> int:
    """Money refunded after the order completed takes back the points its completion earned for
    that money, as many as the buyer still holds (never below zero): after the refund's own
    transaction (money is never held up for points), in a transaction of its own keyed by the
    refund (`unearn#<out_refund_no>`, so once), conditioned like a redeem. The earn entry says
    what refunded total it was earned on, so a refund the completion already counted takes
    nothing. Returns the points taken back (0 when the order earned nothing, or not yet)."""
    earn = store.get_entry(order.user_id, f"earn#{order.order_id}")
    if earn is None or earn.delta <= 0:
        return 0
    counted = int(earn.detail.get("refunded_fen", 0))
    due = (rules.earned_for_order(order.payable_fen, max(refunded_before_fen, counted), policy())
           - rules.earned_for_order(order.payable_fen, max(refunded_after_fen, counted), policy()))
    if due <= 0:
        return 0
    for _ in range(3):
        now = clock.now()
        account = store.get_account(order.user_id)
        taking = min(due, account.balance(today_in_china(now)))
        parts = rules.take(account, taking, today_in_china(now))
        change = PointsChange(order.user_id, Entry(f"unearn#{out_refund_no}", "unearn", -taking, order.order_id, now,
                                                   {"due": due} if taking < due else {}),
                              {day: -taken for day, taken in parts.items()})
        try:
            store.apply(change)
        except store.TransactionCanceled:
            if store.get_entry(order.user_id, change.entry.entry_key) is not None:
                return 0  # taken back before (a repeated completion)
            continue  # the lots moved: read again
        return taking
    log.warning("earned points not taken back: the account kept changing", order_id=order.order_id,
                out_refund_no=out_refund_no, due=due)
    return 0


def _earning(user_id: str, entry_key: str, kind: str, earned: int, ref: str, now: datetime,
             sign_in: tuple[date, int, date | None] | None = None, detail: dict | None = None) -> PointsChange:
    expires_on = rules.expires_on_for(today_in_china(now), policy())
    return PointsChange(user_id, Entry(entry_key, kind, earned, ref, now, detail or {}), {expires_on: earned}, sign_in)


def _as_extra(change: PointsChange, account_failure: Exception) -> list[ExtraUpdate]:
    """The change's writes as ExtraUpdates: the account (its failure named), the entry (failing
    only when the event was applied already: a status condition of the same transaction fails
    first, so this is a second guard) and the expiry markers (unconditional)."""
    account, entry, *markers = change.updates
    return [ExtraUpdate(account, account_failure), ExtraUpdate(entry, PointsChanged(f"entry {change.entry.entry_key} exists")),
            *(ExtraUpdate(marker, PointsChanged()) for marker in markers)]


# --- on their own ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignInResult:
    date: date
    points: int
    streak: int
    signed_in_now: bool  # False: the user had signed in today already (the same result again)


def sign_in(user_id: str) -> SignInResult:
    """Once per Asia/Shanghai day; a second call that day answers the first one's result."""
    for _ in range(3):
        now = clock.now()
        today = today_in_china(now)
        entry_key = f"sign_in#{today.isoformat()}"
        existing = store.get_entry(user_id, entry_key)
        if existing is not None:
            return SignInResult(today, existing.delta, int(existing.detail.get("streak", 1)), False)
        account = store.get_account(user_id)
        earned, streak = rules.sign_in_reward(account, today, policy())
        change = _earning(user_id, entry_key, "sign_in", earned, today.isoformat(), now,
                          sign_in=(today, streak, account.last_sign_in), detail={"streak": streak})
        try:
            store.apply(change)
        except store.TransactionCanceled:
            continue  # signed in on another device just now, or the day turned: read again
        log.info("signed in", user_id=user_id, points=earned, streak=streak)
        return SignInResult(today, earned, streak, True)
    raise Conflict("Signing in collided with another sign-in; retry", code="sign_in_busy")


def earn_for_review_photos(user_id: str, order_id: str, sku_id: str) -> bool:
    """Points for a review with photos, once per reviewed line (the entry's key): True if given now."""
    earned = policy().review_photo_points
    if earned <= 0:
        return False
    change = _earning(user_id, f"review#{order_id}#{sku_id}", "earn_review", earned, f"{order_id}/{sku_id}", clock.now())
    try:
        store.apply(change)
    except store.TransactionCanceled:
        return False  # given before (the entry exists): nothing else conditions an earning
    return True


def expire_due(limit: int = EXPIRY_BATCH, budget_seconds: float = EXPIRY_SECONDS) -> dict[str, int]:
    """The daily job: remove the lots whose expiry day is over, each with its ledger entry.
    Finds accounts by the expiry markers (every marker of the recent expiry days, at most
    `limit` accounts and `budget_seconds` a run: a bigger backlog is logged, `more` says so, and
    the next run goes on), re-reads each one before writing, and takes off what the lot holds
    (conditioned on that amount, so a give-back racing with it is never lost: it fails the
    condition, or lands after it with a new marker, for the next run)."""
    today = today_in_china()
    stop_at = time.monotonic() + budget_seconds
    outcome = {"accounts": 0, "points": 0, "more": 0}
    for expires_on in rules.recent_expiry_days(today):
        for user_id in store.users_with_lots_expiring(expires_on):
            if outcome["accounts"] >= limit or time.monotonic() > stop_at:
                outcome["more"] = 1
                log.warning("points expiry stopped at its limit; the next run goes on", **outcome)
                return outcome
            outcome["points"] += _expire_lot(user_id, expires_on)
            outcome["accounts"] += 1
    return outcome


def _expire_lot(user_id: str, expires_on: date) -> int:
    for _ in range(3):
        account = store.get_account(user_id)
        held = account.lots.get(expires_on)
        try:
            if held is None:
                store.forget_marker(user_id, expires_on)  # conditioned on the lot still absent
                return 0
            now = clock.now()
            # Keyed by the day, the moment and a nonce: points put back into the lot after it
            # expired (a give-back decided before midnight) expire again, as another event. The
            # lot's own condition (holds `held`, then removed) makes each expiry happen once.
            key = f"expire#{expires_on.isoformat()}#{int(now.timestamp() * 1000)}#{uuid.uuid4().hex[:8]}"
            change = (PointsChange(user_id, Entry(key, "expire", -held, expires_on.isoformat(), now),
                                   {expires_on: -held}) if held != 0 else None)
            store.expire_lot(user_id, expires_on, held, change)
        except store.TransactionCanceled:
            continue  # points came back into the lot meanwhile: read again
        return held
    log.warning("could not expire a lot: it kept changing; the next run tries again", user_id=user_id,
                expires_on=expires_on.isoformat())
    return 0


# --- reading -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PointsView:
    balance: int
    lots: list[tuple[date, int]]
    history: list[Entry]
    expiring_soon: int  # points expiring within 30 days


def balance(user_id: str) -> int:
    """Spendable points now (one GetItem; `view` adds the lots' expiry and the ledger page)."""
    return store.get_account(user_id).balance(today_in_china())


def view(user_id: str, before_ms: int | None = None) -> PointsView:
    today = today_in_china()
    account = store.get_account(user_id)
    lots = account.lots_in_expiry_order(today)
    soon = sum(points for expires_on, points in lots if expires_on <= today + timedelta(days=30))
    return PointsView(balance=account.balance(today), lots=lots,
                      history=store.list_entries(user_id, HISTORY_LIMIT, before_ms), expiring_soon=soon)
