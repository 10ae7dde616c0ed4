"""EventBridge schedule expressions for the local worker: `rate(...)` and six-field `cron(...)`.

chalice local fires no schedules, so the worker parses the expressions itself; times are UTC,
as EventBridge's are.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$", re.IGNORECASE)
_CRON = re.compile(r"^cron\((.+)\)$", re.IGNORECASE)
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), 1)}
_WEEKDAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split(), 1)}  # EventBridge: 1 = Sunday


def expression_string(expression: Any) -> str:
    """A schedule expression as EventBridge text, from a string or a chalice Rate/Cron."""
    return expression if isinstance(expression, str) else expression.to_string()


def parse_rate(expression: Any) -> float:
    """Seconds between runs of `rate(N minute|minutes|hour|hours|day|days)` (or a chalice Rate)."""
    text = expression_string(expression).strip()
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"not a rate expression: {text!r}")
    value, unit = int(match.group(1)), match.group(2).lower().rstrip("s")
    if value <= 0:
        raise ValueError(f"rate must be positive: {text!r}")
    return float(value * _UNIT_SECONDS[unit])


def _cron_field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int] | None:
    """The values one cron field allows; None for `*`/`?` (anything). Raises on L, W, # etc."""
    if text in ("*", "?"):
        return None
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            start, end = low, high
        else:
            first, _, last = base.partition("-")
            start = _cron_value(first, names)
            end = _cron_value(last, names) if last else (high if step_text else start)
        if step <= 0 or not low <= start <= high or not low <= end <= high:
            raise ValueError(f"cron field out of range: {text!r}")
        values.update(range(start, end + 1, step))
    return values


def _cron_value(text: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    return int(text)  # ValueError for L, W, # and other forms we do not emulate


@dataclass(frozen=True)
class CronSchedule:
    """EventBridge's six-field cron (minutes hours day-of-month month day-of-week year), in UTC."""
    minutes: set[int] | None
    hours: set[int] | None
    days: set[int] | None
    months: set[int] | None
    weekdays: set[int] | None
    years: set[int] | None

    @classmethod
    def parse(cls, expression: Any) -> "CronSchedule":
        text = expression_string(expression).strip()
        match = _CRON.match(text)
        fields = match.group(1).split() if match else []
        if len(fields) != 6:
            raise ValueError(f"not a six-field cron expression: {text!r}")
        return cls(_cron_field(fields[0], 0, 59), _cron_field(fields[1], 0, 23), _cron_field(fields[2], 1, 31),
                   _cron_field(fields[3], 1, 12, _MONTHS), _cron_field(fields[4], 1, 7, _WEEKDAYS),
                   _cron_field(fields[5], 1970, 2199))

    def matches(self, moment: dt.datetime) -> bool:
        weekday = moment.isoweekday() % 7 + 1  # Monday=1..Sunday=7 -> Sunday=1..Saturday=7
        checks = ((self.minutes, moment.minute), (self.hours, moment.hour), (self.days, moment.day),
                  (self.months, moment.month), (self.weekdays, weekday), (self.years, moment.year))
        return all(allowed is None or value in allowed for allowed, value in checks)
