"""Thread-safe in-memory state shared by every simulator endpoint.

One ``SimState`` lives for the life of a simulator.  Handlers run on many
threads (ThreadingHTTPServer), so every read-modify-write goes through
``state.lock``.  Nothing here is persisted: ``reset()`` (or a restart) forgets
all codes, tokens, users and messages, which is exactly what tests want.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

DEFAULT_APPID = "wx_demo_appid"
DEFAULT_SECRET = "demo_app_secret"

# Upper bounds so a mistyped fault spec can never hang a test run for long.
MAX_FAULT_TIMES = 10_000
MAX_FAULT_DELAY_MS = 120_000


def default_apps() -> dict[str, str]:
    """Apps known to the simulator when the caller passes none.

    Read from the same env vars the backend uses, so the simulator and the
    backend agree on credentials without extra configuration.
    """
    appid = os.environ.get("WECHAT_APPID")
    secret = os.environ.get("WECHAT_SECRET")
    if appid and secret:
        return {appid: secret}
    return {DEFAULT_APPID: DEFAULT_SECRET}


@dataclass
class Knobs:
    """Behaviour switches; all have WeChat's documented defaults."""

    token_ttl: int = 7200                 # access_token lifetime, seconds
    token_grace_s: int = 300              # old token lifetime after force_refresh
    code2session_per_minute: int = 100    # successful logins per openid per minute
    verbose: bool = False                 # per-request log lines on stderr
    subscribe_quota: bool = False         # subscribe/send needs an acceptance (subscribe_quota.py)

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> "Knobs":
        known = set(cls.__dataclass_fields__)
        unknown = set(kwargs) - known
        if unknown:
            raise TypeError(f"unknown simulator knob(s): {sorted(unknown)}")
        knobs = cls(**kwargs)
        if knobs.token_ttl <= 0 or knobs.code2session_per_minute <= 0 or knobs.token_grace_s < 0:
            raise ValueError("token_ttl and code2session_per_minute must be > 0, token_grace_s >= 0")
        return knobs


@dataclass
class Fault:
    """One queued fault: the next ``times`` calls of ``endpoint`` misbehave."""

    endpoint: str
    errcode: int | None = -1
    errmsg: str = "system error"
    times: int = 1
    http_status: int = 200
    delay_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Token:
    appid: str
    expires_at: float


@dataclass
class _Data:
    """Everything ``reset()`` wipes, grouped so reset is one assignment."""

    used_codes: set[str] = field(default_factory=set)            # login js_codes
    used_phone_codes: set[str] = field(default_factory=set)      # getuserphonenumber codes
    openids: dict[str, set[str]] = field(default_factory=dict)   # appid -> issued openids
    login_times: dict[tuple[str, str], deque] = field(default_factory=dict)
    session_keys: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, Token] = field(default_factory=dict)       # token -> owner/expiry
    current_token: dict[str, str] = field(default_factory=dict)  # appid -> newest token
    messages: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    next_msgid: int = 1_700_000_000_000_000_001
    # Per-module scratch space for route modules added later (e.g. WeChat Pay).
    ext: dict[str, Any] = field(default_factory=dict)


class SimState:
    def __init__(
        self,
        apps: dict[str, str] | None = None,
        clock: Callable[[], float] | None = None,
        **knobs: Any,
    ) -> None:
        self.apps: dict[str, str] = dict(apps) if apps else default_apps()
        self.knobs = Knobs.from_kwargs(knobs)
        # Injectable so tests can move time forward instead of sleeping.
        self._clock = clock or time.time
        self._offset = 0.0  # moved by POST /__sim/advance-time for out-of-process tests
        self.lock = threading.RLock()
        # Set on stop() so injected delays end early instead of outliving the server.
        self.stopping = threading.Event()
        # Run by Simulator.stop() after the server stops, e.g. to join notify
        # threads; each must return within a few seconds.
        self.stop_hooks: list[Callable[[], None]] = []
        self.pay: Any = None  # pay_keys.PayConfig, set by start_simulator (kept across reset())
        self.data = _Data()

    # -- time ---------------------------------------------------------------
    def now(self) -> float:
        return self._clock() + self._offset

    def wall_now(self) -> float:
        """The injected (or real) clock *without* the /__sim/advance-time offset.

        Used for protocol timestamps (WeChat Pay signature times), which the
        peer checks against its own clock: moving WeChat's business time from
        another process must not make every signature look stale.
        """
        return self._clock()

    def advance(self, seconds: float) -> None:
        with self.lock:
            self._offset += float(seconds)

    # -- lifecycle ----------------------------------------------------------
    def reset(self) -> None:
        """Forget all users, codes, tokens, messages, faults and counters."""
        with self.lock:
            self.data = _Data()

    def namespace(self, name: str, factory: Callable[[], Any]) -> Any:
        """Scratch state for a route module; recreated after ``reset()``."""
        with self.lock:
            if name not in self.data.ext:
                self.data.ext[name] = factory()
            return self.data.ext[name]

    # -- counters & faults (used generically by the router) -----------------
    def count_call(self, endpoint: str) -> None:
        with self.lock:
            self.data.calls[endpoint] = self.data.calls.get(endpoint, 0) + 1

    def calls(self, endpoints: list[str] | None = None) -> dict[str, int]:
        with self.lock:
            out = {name: 0 for name in endpoints or []}
            out.update(self.data.calls)
            return out

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.data.faults.setdefault(fault.endpoint, []).append(fault)

    def take_fault(self, endpoint: str) -> Fault | None:
        """Consume one use of the oldest queued fault for ``endpoint``."""
        with self.lock:
            queue = self.data.faults.get(endpoint)
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault

    def pending_faults(self) -> list[dict[str, Any]]:
        with self.lock:
            return [f.as_dict() for q in self.data.faults.values() for f in q]
