"""Member levels from spend: `normal`, `vip`, `black_gold`, each with a discount.

A level is reached by paid-minus-refunded spend: over the member's lifetime (`window_days`
None) or over the last `window_days` days (Asia/Shanghai dates, today included). Spend is kept
per day on the member's spend item (storage/members.py), changed exactly once by the payment's
and the refund's own transactions, so the level is a pure function of that item, the rules and
today: computed when it is needed (checkout, GET /v1/me), never stale after a payment or a
refund; the nightly job only prunes days that no window can reach any more.

The highest level whose rule is met wins (LEVELS order); its discount_permille is the pricing
step "member level" (950 = 9.5折).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

LEVELS = ("normal", "vip", "black_gold")  # lowest first
MAX_WINDOW_DAYS = 3650


@dataclass(frozen=True)
class LevelRule:
    level: str  # vip or black_gold
    threshold_fen: int
    window_days: int | None  # None: lifetime spend
    discount_permille: int  # what a member of this level pays (1000 = no discount)


# The seeds: VIP from 5,000 yuan lifetime (9.5折), 黑金 from 50,000 yuan in the last 365 days (8.8折).
DEFAULT_RULES: tuple[LevelRule, ...] = (
    LevelRule("vip", 500_000, None, 950),
    LevelRule("black_gold", 5_000_000, 365, 880),
)


@dataclass(frozen=True)
class Spend:
    """Paid minus refunded, in fen: lifetime, and per Asia/Shanghai day (days kept as far back
    as the longest window)."""
    lifetime_fen: int = 0
    by_day: dict[date, int] | None = None

    def within(self, window_days: int | None, today: date) -> int:
        if window_days is None:
            return self.lifetime_fen
        first = today - timedelta(days=window_days - 1)
        return sum(fen for day, fen in (self.by_day or {}).items() if first <= day <= today)


@dataclass(frozen=True)
class Membership:
    level: str
    discount_permille: int
    spend_fen: int  # the spend that counts for the level reached (0 for normal)


def membership(spend: Spend, rules: tuple[LevelRule, ...], today: date) -> Membership:
    reached = Membership("normal", 1000, 0)
    for rule in sorted(rules, key=lambda r: LEVELS.index(r.level)):
        counted = spend.within(rule.window_days, today)
        if counted >= rule.threshold_fen:
            reached = Membership(rule.level, rule.discount_permille, counted)
    return reached


def oldest_day_kept(rules: tuple[LevelRule, ...], today: date) -> date:
    """Days before this one count for no window: the nightly job drops them."""
    longest = max((rule.window_days for rule in rules if rule.window_days), default=0)
    return today - timedelta(days=max(longest, 366) - 1)
