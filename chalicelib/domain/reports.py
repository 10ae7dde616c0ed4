"""Report rules, pure: the date range a report may cover, and rendering rows as CSV."""
from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any, Iterable, Sequence

MAX_RANGE_DAYS = 92  # inclusive: about a quarter
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 1, 1)


def check_range(first: date, last: date) -> None:
    """ValueError naming what is wrong with [first, last]."""
    if not (EARLIEST <= first < LATEST and EARLIEST <= last < LATEST):
        raise ValueError("dates must lie between 2000-01-01 and 2099-12-31")
    if last < first:
        raise ValueError("'to' must not be before 'from'")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise ValueError(f"a report covers at most {MAX_RANGE_DAYS} days")


def to_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    """RFC 4180 CSV with a header row; a cell a spreadsheet would run as a formula
    (`=`, `+`, `-`, `@` first) is quoted with a leading apostrophe, since product names are the
    merchant's text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if isinstance(value, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text
