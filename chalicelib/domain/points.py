"""Points: lots with an expiry, spent first-to-expire first, and the rules that earn them.

A user's points live in lots keyed by their expiry day (`expires_on`, the last day they can be
spent, Asia/Shanghai). Points earned in a month expire together at the end of the month
`valid_months` later (积分有效期: e.g. earned in December 2026, valid through 31 December 2027
with 12 months), so an account holds at most `valid_months + 1` lots however often its user
signs in, and the expiry job has one date per month to look at.

Spending takes from the lot expiring first (FIFO by expiry), never from an expired lot, and
says which lots it took from (`Parts`), so a cancelled order puts exactly those points back with
their own expiry, and a refund puts back its share of them. Points of a lot that expired
meanwhile are not put back: they would have expired in the buyer's hands too.

Everything here is pure: storage/points.py turns a decision into conditional writes, and the
ledger (one entry per business event) records every change, so balance == the sum of entries.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date

Parts = dict[date, int]  # points taken from (or put back into) each lot, by its expiry day

POINT_VALUE_FEN = 1  # 100 points = 1 yuan


class NotEnoughPoints(Exception):
    def __init__(self, requested: int, available: int):
        super().__init__(f"{requested} points requested, {available} available")
        self.requested, self.available = requested, available


@dataclass(frozen=True)
class PointsPolicy:
    """The store's points rules (environment settings: see settings.PointsSettings)."""
    valid_months: int = 12  # earned in month M, spendable through the end of month M + valid_months
    earn_per_yuan: int = 1  # on completion, per whole yuan the buyer paid and kept paid
    sign_in_points: int = 5  # a day's sign-in
    streak_bonus: tuple[tuple[int, int], ...] = ((7, 20),)  # (every Nth consecutive day, extra points)
    review_photo_points: int = 20  # a review with at least one photo
    max_redeem_permille: int = 500  # points pay at most this share of the goods after other discounts


@dataclass(frozen=True)
class Account:
    """A user's lots (expiry day -> points left) and sign-in streak, as read."""
    user_id: str
    lots: dict[date, int] = field(default_factory=dict)
    last_sign_in: date | None = None
    streak: int = 0

    def balance(self, today: date) -> int:
        """Spendable points: the lots not expired by `today` (an expired lot the job has not
        reached yet is not spendable)."""
        return sum(points for expires_on, points in self.lots.items() if expires_on >= today and points > 0)

    def lots_in_expiry_order(self, today: date) -> list[tuple[date, int]]:
        return sorted((expires_on, points) for expires_on, points in self.lots.items()
                      if expires_on >= today and points > 0)


def expires_on_for(earned_on: date, policy: PointsPolicy) -> date:
    """The last day points earned on `earned_on` may be spent: the end of the month
    `valid_months` later."""
    months = earned_on.year * 12 + (earned_on.month - 1) + policy.valid_months
    year, month = divmod(months, 12)
    return date(year, month + 1, calendar.monthrange(year, month + 1)[1])


def take(account: Account, points: int, today: date) -> Parts:
    """Which lots `points` come from: the first to expire first. Raises NotEnoughPoints."""
    if points < 0:
        raise ValueError("points must not be negative")
    available = account.balance(today)
    if points > available:
        raise NotEnoughPoints(points, available)
    parts: Parts = {}
    left = points
    for expires_on, in_lot in account.lots_in_expiry_order(today):
        if left == 0:
            break
        taken = min(in_lot, left)
        parts[expires_on] = taken
        left -= taken
    return parts


def restorable(parts: Parts, today: date) -> tuple[Parts, int]:
    """What of `parts` can go back now (lots not expired), and how many points are lost to expiry."""
    kept = {expires_on: points for expires_on, points in parts.items() if expires_on >= today and points > 0}
    return kept, sum(parts.values()) - sum(kept.values())


def refund_share(points_used: int, payable_fen: int, refunded_before_fen: int, refunded_after_fen: int) -> tuple[int, int]:
    """Points a refund gives back, pro rata to the money, cumulatively so rounding never drifts:
    (returned before this refund, returned after it). A full refund returns every point."""
    if points_used <= 0 or payable_fen <= 0:
        return 0, 0

    def returned(refunded_fen: int) -> int:
        return points_used if refunded_fen >= payable_fen else points_used * max(0, refunded_fen) // payable_fen

    return returned(refunded_before_fen), returned(refunded_after_fen)


def parts_between(parts: Parts, start: int, end: int) -> Parts:
    """The slice [start, end) of an order's spent points, counted from the lot expiring LAST
    (a refund gives back the longest-lived points first; successive refunds take successive
    slices, so together they return each lot's points exactly once)."""
    result: Parts = {}
    position = 0
    for expires_on, points in sorted(parts.items(), reverse=True):
        low, high = max(start, position), min(end, position + points)
        if high > low:
            result[expires_on] = high - low
        position += points
    return result


def sign_in_reward(account: Account, today: date, policy: PointsPolicy) -> tuple[int, int]:
    """(points for signing in today, the streak it makes): consecutive days extend the streak,
    a missed day starts again at 1; every Nth day of a streak earns the bonus too."""
    streak = account.streak + 1 if account.last_sign_in is not None and (today - account.last_sign_in).days == 1 else 1
    bonus = sum(extra for every, extra in policy.streak_bonus if every > 0 and streak % every == 0)
    return policy.sign_in_points + bonus, streak


def earned_for_order(paid_fen: int, refunded_fen: int, policy: PointsPolicy) -> int:
    """Points for a completed order: per whole yuan paid and not refunded."""
    return max(0, paid_fen - refunded_fen) // 100 * policy.earn_per_yuan


def redeemable(balance: int, goods_after_discounts_fen: int, room_fen: int, max_redeem_permille: int) -> int:
    """The most points one order may use: the balance, the share cap of the goods, and what is
    left above the 1-fen minimum payment (`room_fen`)."""
    cap_fen = goods_after_discounts_fen * max_redeem_permille // 1000
    return max(0, min(balance, cap_fen // POINT_VALUE_FEN, room_fen // POINT_VALUE_FEN))


def recent_expiry_days(today: date, months: int = 3) -> list[date]:
    """The lot expiry days (month-ends) of the last `months` months that are over by `today`:
    what the daily expiry job looks at (more than one, so a missed run is caught up)."""
    days = []
    year, month = today.year, today.month
    for _ in range(months + 1):
        end = date(year, month, calendar.monthrange(year, month)[1])
        if end < today:
            days.append(end)
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return sorted(days)
