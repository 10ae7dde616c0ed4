"""What the current admin request changed, for its audit entry (chalicelib/api/http.py records it).

A service that changes something the merchant may want to see "before" of (an address, a
category, an account's role) calls `note(target, before=..., after=...)`; the HTTP layer writes
the entries once the handler returned a success, and only then (services/audit.py). Nothing here
does I/O: it is a per-request scratch pad in a context variable, so services can use it without
importing the API layer.
"""
from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Entry:
    target: str | None = None
    before: Any = None
    after: Any = None
    action: str | None = None


@dataclass
class Notes:
    entries: list[Entry] = field(default_factory=list)


_current: contextvars.ContextVar[Notes | None] = contextvars.ContextVar("audit_notes", default=None)


def start() -> contextvars.Token:
    return _current.set(Notes())


def reset(token: contextvars.Token) -> None:
    _current.reset(token)


def current() -> Notes | None:
    return _current.get()


def note(target: str | None = None, *, before: Any = None, after: Any = None, action: str | None = None) -> None:
    """Record what changed (several calls: several entries, e.g. one per order of a batch)."""
    notes = _current.get()
    if notes is not None:  # outside an HTTP request (a job, a test calling the service): nothing to record
        notes.entries.append(Entry(target=target, before=before, after=after, action=action))
