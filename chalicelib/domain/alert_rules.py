"""Business alert rules, pure: what each watches, its defaults, its window, and when it fires.

Every rule has `enabled`, a `threshold` and a `min_samples` (below which it stays quiet, so
three orders with one cancel do not alarm anyone). Units per rule:

| rule | fires when | threshold | min_samples | window |
|---|---|---|---|---|
| cancel_rate | cancelled / placed orders today > threshold | permille (80 = 8%) | orders placed | day |
| pay_success_rate | paid / payments asked for today < threshold | permille | payments asked | day |
| notify_failures | payment notifies refused (anomalies) this hour >= threshold | count | - | hour |
| dead_letter_depth | messages in all dead-letter queues > threshold | count | - | hour |
| refund_spike | refunded fen today > threshold permille of the daily mean of the 7 days before | permille (3000 = 3x) | fen refunded today | day |

A rule fires at most once per window (Asia/Shanghai day or hour): the firing is recorded under
a key made of the rule and the window, written only if absent.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from chalicelib.clock import CHINA_TZ
from chalicelib.domain.analytics import permille

RULES = ("cancel_rate", "pay_success_rate", "notify_failures", "dead_letter_depth", "refund_spike")
BASELINE_DAYS = 7


@dataclass(frozen=True)
class Rule:
    rule: str
    enabled: bool
    threshold: int
    min_samples: int = 0


DEFAULTS: dict[str, Rule] = {
    "cancel_rate": Rule("cancel_rate", True, 80, 20),
    "pay_success_rate": Rule("pay_success_rate", True, 500, 20),
    "notify_failures": Rule("notify_failures", True, 3, 0),
    "dead_letter_depth": Rule("dead_letter_depth", True, 0, 0),
    "refund_spike": Rule("refund_spike", True, 3000, 10000),
}
# Allowed thresholds per rule (inclusive).
THRESHOLD_RANGES = {"cancel_rate": (0, 1000), "pay_success_rate": (0, 1000), "notify_failures": (1, 100000),
                    "dead_letter_depth": (0, 1000000), "refund_spike": (1000, 100000)}
WINDOWS = {"cancel_rate": "day", "pay_success_rate": "day", "notify_failures": "hour",
           "dead_letter_depth": "hour", "refund_spike": "day"}


@dataclass(frozen=True)
class Metrics:
    """What the rules look at, gathered by the evaluation job."""
    orders: int = 0
    cancelled: int = 0
    pay_requests: int = 0
    paid_orders: int = 0
    notify_failures: int = 0
    dead_letters: int = 0
    refund_fen: int = 0
    baseline_refund_fen: tuple[int, ...] = ()  # the days before today, each day's refunded fen


@dataclass(frozen=True)
class Firing:
    rule: str
    window: str  # "2024-05-01" or "2024-05-01T13"
    value: int
    threshold: int
    detail: dict[str, int]


def merged(stored: dict[str, Rule]) -> list[Rule]:
    """Every rule, the stored settings over the defaults."""
    return [stored.get(name, DEFAULTS[name]) for name in RULES]


def change(current: Rule, enabled: bool | None, threshold: int | None, min_samples: int | None) -> Rule:
    low, high = THRESHOLD_RANGES[current.rule]
    if threshold is not None and not low <= threshold <= high:
        raise ValueError(f"threshold must be between {low} and {high} for {current.rule}")
    return replace(current, enabled=current.enabled if enabled is None else enabled,
                   threshold=current.threshold if threshold is None else threshold,
                   min_samples=current.min_samples if min_samples is None else min_samples)


def window(rule: str, now: datetime) -> str:
    local = now.astimezone(CHINA_TZ)
    return local.date().isoformat() if WINDOWS[rule] == "day" else local.strftime("%Y-%m-%dT%H")


def evaluate(rule: Rule, metrics: Metrics, now: datetime) -> Firing | None:
    """The firing of `rule` now, or None."""
    if not rule.enabled:
        return None
    value, detail, fires = _check(rule, metrics)
    if not fires:
        return None
    return Firing(rule.rule, window(rule.rule, now), value, rule.threshold, detail)


def _check(rule: Rule, m: Metrics) -> tuple[int, dict[str, int], bool]:
    name, threshold = rule.rule, rule.threshold
    if name == "cancel_rate":
        rate = permille(m.cancelled, m.orders)
        return rate, {"orders": m.orders, "cancelled": m.cancelled}, m.orders >= max(1, rule.min_samples) and rate > threshold
    if name == "pay_success_rate":
        rate = permille(m.paid_orders, m.pay_requests)
        return (rate, {"pay_requests": m.pay_requests, "paid_orders": m.paid_orders},
                m.pay_requests >= max(1, rule.min_samples) and rate < threshold)
    if name == "notify_failures":
        return m.notify_failures, {"failures": m.notify_failures}, m.notify_failures >= threshold
    if name == "dead_letter_depth":
        return m.dead_letters, {"messages": m.dead_letters}, m.dead_letters > threshold
    if name == "refund_spike":
        days = m.baseline_refund_fen or (0,)
        mean = sum(days) // len(days)
        ratio = permille(m.refund_fen, mean) if mean else (1_000_000 if m.refund_fen else 0)
        return (ratio, {"refund_fen": m.refund_fen, "baseline_mean_fen": mean},
                m.refund_fen >= max(1, rule.min_samples) and ratio > threshold)
    raise ValueError(f"unknown rule {name}")
