"""Child processes of the local stack: free ports, start, wait, stop, and stop-everything-on-exit.

Every child runs in its own process group (its own session), so one signal reaches it and all
its descendants, and a Ctrl-C in the terminal reaches only the stack, which then stops the
children in order. On Linux a child started from the main thread also gets SIGTERM when we
die (PR_SET_PDEATHSIG), so even a SIGKILLed stack or test run leaves no orphan JVM behind.
"""
from __future__ import annotations

import atexit
import collections
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, MutableMapping, Protocol, Sequence

LOOPBACK = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".local"
LOG_DIR = STATE_DIR / "logs"
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"

# Default loopback ports of `make run` (each overridable by its env name).
DEFAULT_PORTS = {"API_PORT": 8000, "DYNAMODB_PORT": 8001, "SQS_PORT": 8002, "WECHAT_SIM_PORT": 8003}


class StartupError(RuntimeError):
    """A child did not come up in time (the message carries the tail of its log)."""


class Stoppable(Protocol):
    def stop(self) -> Any: ...


# ---------------------------------------------------------------------------------- ports


def free_port(host: str = LOOPBACK) -> int:
    """A port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_from_env(name: str, environ: Mapping[str, str] | None = None) -> int:
    raw = (environ if environ is not None else os.environ).get(name) or str(DEFAULT_PORTS[name])
    try:
        port = int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a port number, got {raw!r}") from exc
    if not 0 < port < 65536:
        raise SystemExit(f"{name} must be a port number, got {raw!r}")
    return port


# ---------------------------------------------------------------------- stage environment


def chalice_stage_env(stage: str = "local") -> dict[str, str]:
    """The environment_variables of `.chalice/config.json`: top level, then the stage's."""
    config = json.loads(CHALICE_CONFIG.read_text(encoding="utf-8"))
    merged = dict(config.get("environment_variables", {}))
    merged.update(config.get("stages", {}).get(stage, {}).get("environment_variables", {}))
    return {name: str(value) for name, value in merged.items()}


def is_set(environ: Mapping[str, str], name: str) -> bool:
    """Set and not empty (the app's settings treat an empty value as unset too)."""
    return bool(environ.get(name))


def apply_local_defaults(environ: MutableMapping[str, str], stage: str | None = None) -> list[str]:
    """Fill names the caller did not set from the stage's config; the caller's values win.

    For the `local` stage this also points the AWS SDK at the local stack's default loopback
    endpoints and gives it dummy credentials, so a local command never reaches real AWS.
    Returns the names it filled in.
    """
    stage = stage or environ.get("STAGE") or "local"
    filled = []
    defaults = chalice_stage_env(stage)
    if stage == "local":
        defaults.update({
            "AWS_ENDPOINT_URL_DYNAMODB": f"http://{LOOPBACK}:{port_from_env('DYNAMODB_PORT', environ)}",
            "AWS_ENDPOINT_URL_SQS": f"http://{LOOPBACK}:{port_from_env('SQS_PORT', environ)}",
            "AWS_ENDPOINT_URL_S3": f"http://{LOOPBACK}:{port_from_env('SQS_PORT', environ)}",  # the same moto server
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        })
    for name, value in defaults.items():
        if not is_set(environ, name):
            environ[name] = value
            filled.append(name)
    return filled


# ------------------------------------------------------------------------------ processes


def _prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # resolved in the parent, not after fork
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl() if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


_LIVE: "set[ManagedProcess]" = set()
_LIVE_LOCK = threading.Lock()


class ManagedProcess:
    """A child in its own process group, with its output in a log file (and optionally echoed)."""

    def __init__(self, name: str, popen: subprocess.Popen, log_path: Path | None,
                 pump: threading.Thread | None = None):
        self.name = name
        self.popen = popen
        self.log_path = log_path
        self._pump = pump
        self._stopped = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def stopped(self) -> bool:
        """True once stop() was called (so an exit is expected)."""
        return self._stopped

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        with self.log_path.open("r", encoding="utf-8", errors="replace") as handle:
            return "".join(collections.deque(handle, maxlen=lines)).rstrip() or "(log is empty)"

    def stop(self, grace_seconds: float = 5.0) -> int | None:
        """SIGTERM to the whole group, then SIGKILL after the grace period.

        Idempotent; a stop that was cut short (while the child still runs) is done again.
        """
        if self._stopped and self.popen.poll() is not None:
            return self.popen.returncode
        self._stopped = True
        self._signal_group(signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        # Descendants may outlive the leader; make sure the group is gone.
        self._signal_group(signal.SIGKILL)
        if self._pump is not None:
            self._pump.join(timeout=2)
        with _LIVE_LOCK:
            _LIVE.discard(self)
        return self.popen.poll()

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)  # the child leads its own group (start_new_session)
        except (ProcessLookupError, PermissionError):
            pass

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid} alive={self.alive()}>"


def _pump_output(stream: Any, log_path: Path, prefix: str) -> None:
    """Copy the child's output to its log file and to our stdout, each line prefixed."""
    with log_path.open("ab") as log:
        for raw in iter(stream.readline, b""):
            log.write(raw)
            log.flush()
            try:
                sys.stdout.write(f"{prefix}{raw.decode('utf-8', 'replace').rstrip()}\n")
                sys.stdout.flush()
            except (ValueError, OSError):  # our stdout is closed: keep logging to the file
                pass
    stream.close()


def start_process(name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                  cwd: Path | str | None = None, echo: bool = False,
                  log_dir: Path | None = None) -> ManagedProcess:
    """Start `argv` in its own process group; output goes to `.local/logs/<name>.log`.

    With `echo=True` each output line is also printed to our stdout as `[name] line`.
    """
    log_dir = log_dir or LOG_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    kwargs: dict[str, Any] = dict(cwd=str(cwd or ROOT), env=child_env, stdin=subprocess.DEVNULL,
                                  start_new_session=True)
    # The death signal follows the starting *thread*; only the main thread lives as long as we do.
    if _PRCTL is not None and threading.current_thread() is threading.main_thread():
        kwargs["preexec_fn"] = _die_with_parent
    if echo:
        log_path.write_bytes(b"")
        popen = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)
        pump = threading.Thread(target=_pump_output, args=(popen.stdout, log_path, f"[{name}] "),
                                name=f"pump:{name}", daemon=True)
        pump.start()
        process = ManagedProcess(name, popen, log_path, pump)
    else:
        with log_path.open("wb") as log:
            popen = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, **kwargs)
        process = ManagedProcess(name, popen, log_path)
    with _LIVE_LOCK:
        _LIVE.add(process)
    return process


def stop_all_live() -> None:
    """Safety net at interpreter exit: stop any child that nobody stopped."""
    with _LIVE_LOCK:
        leftovers = list(_LIVE)
    for process in leftovers:
        process.stop(grace_seconds=3)


atexit.register(stop_all_live)


# ---------------------------------------------------------------------------------- waits


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str,
               process: ManagedProcess | None = None, interval: float = 0.2) -> None:
    """Poll `predicate` until it holds; fail early if `process` exits, or after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if process is not None and not process.alive():
            raise StartupError(f"{process.name} exited (code {process.returncode}) before {what}; "
                               f"log {process.log_path}:\n{process.log_tail()}")
        if time.monotonic() >= deadline:
            tail = f"; log {process.log_path}:\n{process.log_tail()}" if process is not None else ""
            raise StartupError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")
        time.sleep(interval)


def wait_for_port(port: int, *, host: str = LOOPBACK, timeout: float = 30.0,
                  process: ManagedProcess | None = None) -> None:
    wait_until(lambda: port_is_open(port, host), timeout=timeout, what=f"{host}:{port} to accept connections",
               process=process)


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of GET `url`, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback only)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def wait_for_http(url: str, *, timeout: float = 30.0, process: ManagedProcess | None = None,
                  statuses: Iterable[int] = (200,)) -> None:
    wanted = set(statuses)
    wait_until(lambda: http_status(url) in wanted, timeout=timeout, what=f"GET {url} to answer {sorted(wanted)}",
               process=process)


# ------------------------------------------------------------------------------- registry


class ProcessRegistry:
    """Things to stop (processes, servers, handles with .stop()), stopped last-started-first."""

    def __init__(self) -> None:
        self._items: list[Stoppable] = []
        self._lock = threading.Lock()

    def add(self, item: Stoppable) -> Any:
        with self._lock:
            self._items.append(item)
        return item

    def __iter__(self):
        with self._lock:
            return iter(list(self._items))

    def stop_all(self) -> None:
        """Stop everything (idempotent); one failure does not keep the others running."""
        while True:
            with self._lock:
                if not self._items:
                    return
                item = self._items.pop()
            try:
                item.stop()
            except Exception as error:  # noqa: BLE001 (keep stopping the rest)
                print(f"local: error while stopping {item!r}: {error}", file=sys.stderr)

    def install_exit_handlers(self) -> None:
        """Stop everything at interpreter exit, and turn SIGTERM into KeyboardInterrupt.

        Call from the main thread. SIGINT already raises KeyboardInterrupt; with SIGTERM doing
        the same, one `try/finally` around the foreground loop handles both, also mid-startup.
        """
        atexit.register(self.stop_all)

        def _interrupt(signum: int, _frame: Any) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)


def ignore_interrupts() -> None:
    """While shutting down: further Ctrl-C / SIGTERM must not cut the cleanup short."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
