"""Token-bucket rate limits, as GCRA (the generic cell rate algorithm).

A bucket is one number, its theoretical arrival time (TAT): the moment the bucket would be
full again. A request at `now` is allowed when `max(TAT, now) - now <= tolerance`, and then
moves TAT on by one emission interval. With interval T = 1/rate and tolerance (burst - 1) * T
this is exactly a token bucket of `burst` tokens refilled at `rate` per second, but it needs no
read: storage applies it as two conditional writes (storage/rate_limits.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    name: str
    burst: int
    per_second: float

    @property
    def interval_ms(self) -> int:
        return math.ceil(1000 / self.per_second)

    @property
    def tolerance_ms(self) -> int:
        return (self.burst - 1) * self.interval_ms

    @property
    def retry_after_seconds(self) -> int:
        """A refused request never waits more than one interval for the next token."""
        return max(1, math.ceil(self.interval_ms / 1000))


# API.md: one user, a burst of 5 entries or a steady 2 per second.
FLASH_ENTRY_PER_USER = RateLimit("flash-user", burst=5, per_second=2)


def flash_entry_per_ip(burst: int, per_second: float) -> RateLimit:
    """Per source IP (settings FLASH_IP_BURST / FLASH_IP_PER_SECOND, default 50 / 20): it stops one
    machine cycling through stolen or fake accounts, while buyers behind one NAT still get in."""
    return RateLimit("flash-ip", burst=burst, per_second=per_second)


def allows(tat_ms: int | None, now_ms: int, limit: RateLimit) -> bool:
    """The pure decision (the storage conditions encode the same inequality)."""
    start = max(tat_ms or now_ms, now_ms)
    return start - now_ms <= limit.tolerance_ms
