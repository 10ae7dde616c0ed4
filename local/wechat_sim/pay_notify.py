"""Delivering payment and refund notifies (built by pay_messages) to the
order's notify_url, with bounded retries.

Delivery knobs (``DeliveryKnobs``): ``duplicate`` extra copies (``concurrent``
= all copies fire at once through a barrier), ``delay_ms`` before the first
attempt, ``corrupt`` (see ``pay_messages.CORRUPTIONS``), ``hold`` (park the notifies until
``release``), ``max_attempts``.  Every attempt is recorded on its job
(``GET /__sim/pay/notifies``).  Threads are capped (``MAX_THREADS``), every
wait ends early when the simulator stops, and ``Simulator.stop()`` joins them.
"""

from __future__ import annotations

import ipaddress
import itertools
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import pay_crypto as pc
from .pay_keys import pay_config
from .pay_messages import CORRUPTIONS, KnobError, check_corrupt, pay_body, refund_body, v3_headers
from .pay_store import Refund, Transaction, rfc3339

MAX_THREADS = 64
MAX_DUPLICATE = 20
MAX_ATTEMPTS = 20
MAX_DELAY_MS = 60_000
MAX_JOBS_KEPT = 2000
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TooBusy(RuntimeError):
    pass


@dataclass
class DeliveryKnobs:
    duplicate: int = 0
    concurrent: bool = False
    delay_ms: int = 0
    corrupt: str | None = None
    hold: bool = False
    max_attempts: int | None = None
    wait: bool = False
    wait_timeout_s: float = 30.0

    @classmethod
    def parse(cls, body: dict[str, Any]) -> "DeliveryKnobs":
        def integer(name: str, low: int, high: int, default: Any) -> Any:
            value = body.get(name, default)
            if value is default:
                return value
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise KnobError(f"{name} must be an integer {low}..{high}")
            return value

        for flag in ("concurrent", "hold", "wait"):
            if not isinstance(body.get(flag, False), bool):
                raise KnobError(f"{flag} must be a boolean")
        corrupt = body.get("corrupt")
        if corrupt is not None and corrupt not in CORRUPTIONS:
            raise KnobError(f"corrupt must be one of {sorted(CORRUPTIONS)}")
        timeout = body.get("wait_timeout_s", 30.0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 60:
            raise KnobError("wait_timeout_s must be 0..60")
        return cls(duplicate=integer("duplicate", 0, MAX_DUPLICATE, 0),
                   concurrent=body.get("concurrent", False), delay_ms=integer("delay_ms", 0, MAX_DELAY_MS, 0),
                   corrupt=corrupt, hold=body.get("hold", False),
                   max_attempts=integer("max_attempts", 1, MAX_ATTEMPTS, None),
                   wait=body.get("wait", False), wait_timeout_s=float(timeout))


@dataclass
class NotifyJob:
    id: str
    kind: str                    # "pay" | "refund"
    api: str                     # "v3" | "v2"
    url: str
    body: bytes
    event_type: str
    out_trade_no: str
    out_refund_no: str | None
    corrupt: str | None
    copy: int                    # 0 = the original, 1.. = duplicates
    max_attempts: int
    status: str = "pending"      # held | pending | delivered | failed
    attempts: list[dict[str, Any]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "api": self.api, "url": self.url,
                "event_type": self.event_type, "out_trade_no": self.out_trade_no,
                "out_refund_no": self.out_refund_no, "corrupt": self.corrupt, "copy": self.copy,
                "status": self.status, "max_attempts": self.max_attempts,
                "attempts": [dict(a) for a in self.attempts], "body": self.body.decode("utf-8")}


@dataclass
class NotifyLog:
    jobs: dict[str, NotifyJob] = field(default_factory=dict)
    seq: Any = field(default_factory=lambda: itertools.count(1))


def log(state: Any) -> NotifyLog:
    return state.namespace("pay_notify", NotifyLog)


# -- threads ------------------------------------------------------------------------------

class Runtime:
    """Notify threads of one simulator; survives reset(), joined on stop()."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def spawn(self, target: Any, *args: Any, needed: int = 1) -> None:
        with self.lock:
            self.threads = [t for t in self.threads if t.is_alive()]
            if len(self.threads) + needed > MAX_THREADS:
                raise TooBusy(f"more than {MAX_THREADS} notify threads in flight")
            thread = threading.Thread(target=target, args=args, name="wechat-sim-notify", daemon=True)
            self.threads.append(thread)
        thread.start()

    def capacity(self) -> int:
        with self.lock:
            self.threads = [t for t in self.threads if t.is_alive()]
            return MAX_THREADS - len(self.threads)

    def join(self, timeout: float = 5.0) -> None:
        with self.lock:
            threads = list(self.threads)
        for thread in threads:
            thread.join(timeout=timeout / max(1, len(threads)) + 0.1)


def runtime(state: Any) -> Runtime:
    with state.lock:
        rt = getattr(state, "_pay_runtime", None)
        if rt is None:
            rt = state._pay_runtime = Runtime()
            state.stop_hooks.append(rt.join)
        return rt


# -- jobs (call with state.lock held) ---------------------------------------------------------------

def make_jobs(state: Any, txn: Transaction, refund: Refund | None, knobs: DeliveryKnobs) -> list[NotifyJob]:
    """Build the notify (+ duplicates) for a transaction or refund and record
    the jobs.  Call with ``state.lock`` held; deliver with ``dispatch``."""
    kind = "refund" if refund else "pay"
    api = refund.api if refund else txn.api
    check_corrupt(api, kind, knobs.corrupt)
    url = refund.notify_url if refund else txn.notify_url
    if not url:
        return []
    if refund:
        body, event = refund_body(state, txn, refund, knobs.corrupt)
    else:
        body, event = pay_body(state, txn, knobs.corrupt), "TRANSACTION.SUCCESS"
    notify_log = log(state)
    attempts = knobs.max_attempts or len(pay_config(state).retry_delays_ms) + 1
    jobs = []
    for copy in range(knobs.duplicate + 1):
        job = NotifyJob(id=f"n{next(notify_log.seq)}", kind=kind, api=api, url=url, body=body,
                        event_type=event, out_trade_no=txn.out_trade_no,
                        out_refund_no=refund.out_refund_no if refund else None,
                        corrupt=knobs.corrupt, copy=copy, max_attempts=min(attempts, MAX_ATTEMPTS),
                        status="held" if knobs.hold else "pending")
        notify_log.jobs[job.id] = job
        jobs.append(job)
    (refund.notify_ids if refund else txn.notify_ids).extend(j.id for j in jobs)
    _prune(notify_log)
    return jobs


def _prune(notify_log: NotifyLog) -> None:
    excess = len(notify_log.jobs) - MAX_JOBS_KEPT
    if excess > 0:
        finished = [k for k, j in notify_log.jobs.items() if j.status in ("delivered", "failed")]
        for key in finished[:excess]:
            del notify_log.jobs[key]


# -- delivery -----------------------------------------------------------------------------------

def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _accepted(api: str, status: int | None, body: bytes) -> bool:
    if api == "v3":
        return status in (200, 204)
    if status != 200:
        return False
    try:
        return pc.parse_xml(body).get("return_code") == "SUCCESS"
    except pc.XmlError:
        return False


def attempt(state: Any, job: NotifyJob) -> bool:
    """POST the notify once; record the outcome on the job."""
    record: dict[str, Any] = {"n": len(job.attempts) + 1, "at": rfc3339(state.now()),
                              "status": None, "ok": False, "error": None, "response": ""}
    split = urlsplit(job.url)
    if split.scheme not in ("http", "https") or not _is_loopback(split.hostname):
        record["error"] = "refused: the simulator only calls back loopback http(s) URLs"
    else:
        headers = {"Content-Type": "application/json" if job.api == "v3" else "text/xml",
                   "User-Agent": "Mozilla/4.0 (wechat-sim)", "Request-ID": str(uuid.uuid4())}
        if job.api == "v3":
            headers.update(v3_headers(state, job.body, job.corrupt))
        request = urllib.request.Request(job.url, data=job.body, headers=headers, method="POST")
        timeout = pay_config(state).notify_timeout_s
        try:
            with _OPENER.open(request, timeout=timeout) as resp:
                status, payload = resp.status, resp.read(65536)
        except urllib.error.HTTPError as err:
            status, payload = err.code, err.read(65536)
        except (OSError, ValueError) as exc:  # refused, reset, timeout, bad URL
            status, payload, record["error"] = None, b"", f"{type(exc).__name__}: {exc}"
        record.update(status=status, response=payload.decode("utf-8", "replace")[:2000],
                      ok=_accepted(job.api, status, payload))
    with state.lock:
        job.attempts.append(record)
        if record["ok"]:
            job.status = "delivered"
    return record["ok"]


def _run(state: Any, job: NotifyJob, first_wait_s: float, barrier: threading.Barrier | None) -> None:
    """Attempts until accepted or max_attempts; bounded by max_attempts."""
    delays = pay_config(state).retry_delays_ms or (0,)
    try:
        if first_wait_s > 0 and state.stopping.wait(first_wait_s):
            return
        if barrier is not None:
            try:
                barrier.wait(timeout=10)
            except threading.BrokenBarrierError:
                pass
        while len(job.attempts) < job.max_attempts and not state.stopping.is_set():
            if attempt(state, job):
                return
            if len(job.attempts) >= job.max_attempts:
                break
            wait_ms = delays[min(len(job.attempts) - 1, len(delays) - 1)]
            if state.stopping.wait(wait_ms / 1000.0):
                break
    finally:
        with state.lock:
            if job.status != "delivered":
                job.status = "failed"
        job.done.set()


def _run_in_order(state: Any, jobs: list[NotifyJob], first_wait_s: float) -> None:
    for index, job in enumerate(jobs):
        _run(state, job, first_wait_s if index == 0 else 0, None)


def dispatch(state: Any, jobs: list[NotifyJob], knobs: DeliveryKnobs) -> None:
    """Start delivering (unless held).  Raises TooBusy if over the thread cap."""
    if not jobs or knobs.hold:
        return
    rt, delay = runtime(state), knobs.delay_ms / 1000.0
    if knobs.concurrent and len(jobs) > 1:
        if rt.capacity() < len(jobs):
            raise TooBusy(f"more than {MAX_THREADS} notify threads in flight")
        barrier = threading.Barrier(len(jobs))
        for job in jobs:
            rt.spawn(_run, state, job, delay, barrier, needed=1)
    else:
        rt.spawn(_run_in_order, state, jobs, delay)
    if knobs.wait:
        wait_for(jobs, knobs.wait_timeout_s)


def wait_for(jobs: list[NotifyJob], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for job in jobs:
        job.done.wait(max(0.0, deadline - time.monotonic()))


def release(state: Any, ids: list[str] | None, order: str = "fifo") -> list[NotifyJob]:
    """Deliver held notifies: first attempts in exactly the given order (one
    after another, on this thread), then any failed ones retry in the background."""
    with state.lock:
        held = [j for j in log(state).jobs.values() if j.status == "held"]
        if ids is None:
            jobs = held[::-1] if order == "lifo" else held
        else:
            by_id = {j.id: j for j in held}
            missing = [i for i in ids if i not in by_id]
            if missing:
                raise KnobError(f"not held: {missing}")
            jobs = [by_id[i] for i in ids]
        for job in jobs:
            job.status = "pending"
    rt = runtime(state)
    delays = pay_config(state).retry_delays_ms or (0,)
    for job in jobs:
        if attempt(state, job) or job.max_attempts <= 1:
            if job.status != "delivered":
                with state.lock:
                    job.status = "failed"
            job.done.set()
            continue
        try:
            rt.spawn(_run, state, job, delays[0] / 1000.0, None)
        except TooBusy:
            with state.lock:
                job.status = "failed"
            job.done.set()
    return jobs


def views(state: Any, **filters: str | None) -> list[dict[str, Any]]:
    with state.lock:
        return [job.view() for job in log(state).jobs.values()
                if all(v is None or getattr(job, k) == v for k, v in filters.items())]
