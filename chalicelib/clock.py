"""The one place that reads the time, so expiries and jobs are testable.

Everything stored is UTC; `to_iso` renders China Standard Time (+08:00), which is what a
merchant in China reads and what WeChat Pay's `time_expire` uses.
"""
from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


def _system_now() -> datetime:
    return datetime.now(timezone.utc)


_now: Callable[[], datetime] = _system_now


def now() -> datetime:
    return _now()


def epoch_seconds() -> int:
    return int(_now().timestamp())


def to_iso(moment: datetime) -> str:
    """ISO 8601 with offset, in China Standard Time, whole seconds."""
    return moment.astimezone(CHINA_TZ).isoformat(timespec="seconds")


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


@contextlib.contextmanager
def frozen_at(moment: datetime) -> Iterator[Callable[[timedelta], None]]:
    """Freeze now() at `moment` for a test; yields a function that moves the clock forward."""
    global _now
    current = [moment]
    previous = _now
    _now = lambda: current[0]  # noqa: E731  (a closure over the mutable cell is the point)

    def advance(delta: timedelta) -> None:
        current[0] = current[0] + delta

    try:
        yield advance
    finally:
        _now = previous
