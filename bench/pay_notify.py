"""WeChat Pay notifies: DynamoDB calls, capacity and in-process latency of the app's handling of
each kind of notify, in Pay v3 (signed JSON, AES-GCM resource) and v2 (signed XML; refunds with
an AES-ECB `req_info`).

Per version, four cases, each measured on `N_NOTIFIES` notifies:

- `first`: the first payment notify of a pending order (2-line pickup order): it pays it;
- `duplicate`: the same notify again, right after (the simulator's `duplicate: 1`);
- `refused`: a notify correctly signed (and encrypted) but for one fen more than the order
  (`corrupt: "amount"`, one attempt): refused, with a `payment_anomaly` alert recorded;
- `refund`: the refund result (v3 REFUND.SUCCESS; v2 refund-notify) that completes the refund of
  an unshipped line of a paid order (`POST /v1/orders/{id}/after-sales`, then
  `POST /v1/admin/after-sales/{id}/approve`, which asks the simulator for the refund; the
  simulator keeps it PROCESSING until `POST /__sim/pay/refund-notify`).

How: the WeChat simulator (a thread of this process, started with WeChat Pay keys from
`local/pay_setup.py`) signs each notify and POSTs it over loopback HTTP to a small bridge (like
tests/conftest.py's `notify_bridge`), which hands the exact bytes and headers to
`chalice.test.Client`, so the app's real verification runs. Every meter stays paused for the
whole run (orders, prepay, after-sales, approve, checks: none is counted) and is resumed only by
the bridge, around the app's handling of one notify: its DynamoDB calls and capacity, SQS calls
and WeChat API calls, and its latency. The simulator's own work for a notify (building, signing,
encrypting, loopback HTTP, the bridge) is timed apart: the simulator call's wall time less the
app's handling. A separate meter, resumed around each whole simulator call, shows that nothing
else touched DynamoDB meanwhile (`dynamodb_calls_outside_the_handling`, expected 0).

WECHAT_PAY_VERSION switches between v3 and v2; the app's cached settings and pay gateway are
rebuilt between them (as tests/conftest.py's `reset_process_caches` does).
"""
from __future__ import annotations

import collections
import contextlib
import json
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

from bench import ROOT, env, shop
from bench.capacity import CallCounter, CapacityMeter, Usage
from bench.request_cost import item_fetcher, quiet_app_logs, theoretical_per_request
from bench.stats import summarize_ms

N_NOTIFIES = 40
WARMUP = 3  # rounds per version, unmetered: the first v2 notify imports and builds what v2 needs
VERSIONS = ("v3", "v2")
CASES = ("first", "duplicate", "refused", "refund")
LABELS = {"first": "payment notify: pays a pending order",
          "duplicate": "the same payment notify again (duplicate)",
          "refused": "payment notify refused: amount +1 fen (correctly signed)",
          "refund": "refund notify: completes a 1-line refund (unshipped, restocked)"}
PAYER = "payer"  # the simulator's user; a login code is "payer-<n>", each used once
ORDER_ITEMS = {"sku-fuji-5": 2, "sku-navel-5": 1}  # 2 lines, pickup: no delivery fee, no shipping upload
REFUND_LINE = {"sku_id": "sku-fuji-5", "quantity": 1}
STORE_ID = "store-xuhui"
RESTOCK_UNITS = 10_000
PAY_ENV_NAMES = ("WECHAT_PAY_VERSION", "WECHAT_PAY_API_BASE", "WECHAT_PAY_NOTIFY_URL")
SIM_TIMEOUT_S = 30.0
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy


# ----------------------------------------------------------------------------- the bridge


class NotifyBridge:
    """A loopback HTTP server that forwards the simulator's notifies into the app under test,
    metering the app's handling of each with the meters of the case the main thread expects."""

    def __init__(self, client: Any, simulator: Any, meters: dict[str, CapacityMeter],
                 sqs: dict[str, CallCounter]) -> None:
        self.client, self.simulator, self.meters, self.sqs = client, simulator, meters, sqs
        self._expected: collections.deque = collections.deque()
        self.handled: list[dict] = []  # one per notify of the current simulator call
        self._lock = threading.Lock()
        bridge = self

        class Forward(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, payload = bridge.forward(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="bench-notify-bridge", daemon=True)
        self._thread.start()

    def expect(self, cases: list[str | None]) -> None:
        """The cases of the next notifies, in the order they will arrive (None: not metered)."""
        with self._lock:
            self._expected = collections.deque(cases)
            self.handled = []

    def forward(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        with self._lock:  # one notify at a time through the in-process app
            case = self._expected.popleft() if self._expected else "unexpected"
            meter, sqs = self.meters.get(case), self.sqs.get(case)
            wechat_before = self.simulator.state.calls()
            with contextlib.ExitStack() as stack:
                if meter is not None:
                    stack.enter_context(meter.resumed())
                    stack.enter_context(sqs.resumed())
                started = time.perf_counter()
                answer = self.client.http.post(path, headers=headers, body=body)
                elapsed = time.perf_counter() - started
            wechat_after = self.simulator.state.calls()
            payload = answer.body if isinstance(answer.body, bytes) else (answer.body or "").encode()
            self.handled.append({
                "case": case, "path": path, "status": answer.status_code, "body": payload[:300].decode("utf-8", "replace"),
                "seconds": elapsed,
                "wechat_calls": {name: count - wechat_before.get(name, 0) for name, count in wechat_after.items()
                                 if count != wechat_before.get(name, 0)}})
            return answer.status_code, dict(answer.headers), payload

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# -------------------------------------------------------------------------------- helpers


def _sim(simulator: Any, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"{simulator.base_url}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with _OPENER.open(request, timeout=SIM_TIMEOUT_S) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"simulator {path}: HTTP {error.code}: {error.read()[:500]!r}") from None


def _accepted(version: str, notify: dict) -> bool:
    """The app's answer accepts the notify (v3: 2xx; v2: 200 with return_code SUCCESS)."""
    if version == "v3":
        return notify["status"] in (200, 204)
    return notify["status"] == 200 and "SUCCESS" in notify["body"] and "FAIL" not in notify["body"]


def _answer(version: str, notify: dict) -> str:
    if version == "v3":
        return f"HTTP {notify['status']}" + ("" if notify["status"] in (200, 204) else " FAIL")
    return f"HTTP {notify['status']} {'SUCCESS' if _accepted(version, notify) else 'FAIL'}"


@contextlib.contextmanager
def _pay_settings(version: str, pay_env: dict[str, str], sim_url: str, notify_url: str) -> Iterator[None]:
    """WECHAT_PAY_* for this version; the app's cached settings and gateway rebuilt, before and after."""
    names = (*pay_env, *PAY_ENV_NAMES)
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(pay_env)
    os.environ.update({"WECHAT_PAY_VERSION": version, "WECHAT_PAY_API_BASE": sim_url,
                       "WECHAT_PAY_NOTIFY_URL": notify_url})
    _reset_caches()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _reset_caches()


def _reset_caches() -> None:
    """What tests/conftest.py's reset_process_caches() forgets (AWS clients are kept: the meters
    hook them)."""
    from chalicelib import settings
    from chalicelib.services import access_token, pay_gateway, wechat_clients

    settings.reset_settings_cache()
    wechat_clients.reset_clients()
    access_token.clear_memory_cache()
    pay_gateway.reset_gateway()


def _prepare_store() -> None:
    """Tables, queues and the demo store (idempotent), and stock for every order placed here."""
    from chalicelib import queues
    from chalicelib.services import stock
    from chalicelib.storage import schema
    from local.seed import seed_demo_store

    schema.create_all_tables()
    queues.create_all_queues()
    seed_demo_store(marketing=False)
    for sku_id in ORDER_ITEMS:
        stock.adjust_stock(sku_id, stock.StockChange(sku_id, delta=RESTOCK_UNITS), "bench restock", "bench")


# ------------------------------------------------------------------------------- one round


class Rounds:
    """The store-side steps (unmetered) and the simulator calls whose notifies are measured."""

    def __init__(self, client: Any, simulator: Any, bridge: NotifyBridge, window: CapacityMeter, version: str) -> None:
        from chalicelib.services.auth import ensure_first_admin

        self.client, self.simulator, self.bridge, self.window = client, simulator, bridge, window
        self.token = shop._json(shop._call(client, "POST", "/v1/auth/login", {"code": f"{PAYER}-{version}"}),
                                "payer login")["token"]
        ensure_first_admin()
        self.admin = shop._json(shop._call(client, "POST", "/v1/admin/auth/login", {
            "username": env.BASE_ENV["ADMIN_USERNAME"], "password": env.BASE_ENV["ADMIN_PASSWORD"]}), "admin login")["token"]
        self.sim_seconds: dict[str, list[float]] = collections.defaultdict(list)  # case -> per notify

    def _api(self, method: str, path: str, body: Any = None, token: str | None = None, status: int = 200) -> dict:
        return shop._json(shop._call(self.client, method, path, body, token=token or self.token), f"{method} {path}",
                          status)

    def _order(self) -> dict:
        order = self._api("POST", "/v1/orders", {
            "items": [{"sku_id": sku, "quantity": quantity} for sku, quantity in ORDER_ITEMS.items()],
            "delivery_method": "pickup", "store_id": STORE_ID, "checkout_token": uuid.uuid4().hex}, status=201)
        if order["status"] != "pending_payment":
            raise RuntimeError(f"new order: unexpected status {order['status']!r}")
        return order

    def _order_status(self, order: dict) -> str:
        return self._api("GET", f"/v1/orders/{order['order_id']}")["status"]

    def _deliver(self, version: str, cases: list[str], metered: bool, path: str, body: dict) -> list[dict]:
        """One simulator call; its notifies go through the bridge, metered as `cases` when `metered`.
        Its wall time less the app's handling is the simulator's side, split over its notifies."""
        self.bridge.expect([case if metered else None for case in cases])
        with self.window.resumed() if metered else contextlib.nullcontext():
            started = time.perf_counter()
            _sim(self.simulator, path, {**body, "wait": True, "wait_timeout_s": SIM_TIMEOUT_S})
            wall = time.perf_counter() - started
        handled = list(self.bridge.handled)
        got = [notify["case"] for notify in handled]
        if got != [case if metered else None for case in cases]:
            raise RuntimeError(f"{version} {path}: expected notifies {cases}, got {got}: {handled}")
        if metered:
            outside = max(0.0, wall - sum(notify["seconds"] for notify in handled)) / len(handled)
            for case in cases:
                self.sim_seconds[case].append(outside)
        return handled

    def run(self, version: str, metered: bool) -> list[dict]:
        """first + duplicate and refund on one order, refused on another; checks every outcome."""
        order = self._order()
        params = self._api("POST", f"/v1/orders/{order['order_id']}/pay")
        paid = self._deliver(version, ["first", "duplicate"], metered, "/__sim/pay/request-payment",
                             {**params, "duplicate": 1})
        if not all(_accepted(version, notify) for notify in paid) or self._order_status(order) != "paid":
            raise RuntimeError(f"{version}: the payment notifies did not pay the order: {paid}")

        request = self._api("POST", f"/v1/orders/{order['order_id']}/after-sales",
                            {"kind": "refund", "reason": "少了一个", "lines": [REFUND_LINE]}, status=201)
        approved = self._api("POST", f"/v1/admin/after-sales/{request['request_id']}/approve", token=self.admin)
        if (approved["status"], approved["refund_status"]) != ("refunding", "processing"):
            raise RuntimeError(f"{version}: approve: expected a processing refund, got {approved}")
        refunded = self._deliver(version, ["refund"], metered, "/__sim/pay/refund-notify",
                                 {"out_refund_no": approved["out_refund_no"], "status": "SUCCESS"})
        after = self._api("GET", f"/v1/after-sales/{request['request_id']}")["status"]
        if not _accepted(version, refunded[0]) or after != "refunded":
            raise RuntimeError(f"{version}: the refund notify did not complete the refund ({after}): {refunded}")

        other = self._order()
        params = self._api("POST", f"/v1/orders/{other['order_id']}/pay")
        refused = self._deliver(version, ["refused"], metered, "/__sim/pay/request-payment",
                                {**params, "corrupt": "amount", "max_attempts": 1})
        if _accepted(version, refused[0]) or self._order_status(other) != "pending_payment":
            raise RuntimeError(f"{version}: the mismatching notify was not refused: {refused}")
        return paid + refunded + refused


# ------------------------------------------------------------------------------ measuring


def _by_case(case: str, usage: Usage, n: int, fetch: Any, notifies: list[dict], sim_seconds: list[float],
             version: str, sqs_calls: dict[str, int]) -> dict:
    wechat: collections.Counter = collections.Counter()
    for notify in notifies:
        wechat.update(notify["wechat_calls"])
    dynamodb = usage.per_request(n)
    return {"label": f"{version} {LABELS[case]}", "notifies": n, "path": notifies[0]["path"],
            "answer": dict(collections.Counter(_answer(version, notify) for notify in notifies)),
            "answer_sample": notifies[0]["body"][:200],
            "latency": summarize_ms([notify["seconds"] for notify in notifies]),
            "simulator_side_latency": summarize_ms(sim_seconds),
            "dynamodb": dynamodb, "theoretical": theoretical_per_request(usage, fetch, n),
            "transaction_actions": shop.transaction_actions(usage, n),
            "sqs_calls_per_notify": {op: round(count / n, 3) for op, count in sqs_calls.items()},
            "wechat_calls_per_notify": {name: round(count / n, 3) for name, count in sorted(wechat.items())}}


def _measure_version(version: str, rounds: Rounds, meters: dict[str, CapacityMeter], sqs: dict[str, CallCounter],
                     window: CapacityMeter, fetch: Any, n: int, warmup: int) -> dict:
    for _ in range(warmup):
        rounds.run(version, metered=False)
    for meter in (*meters.values(), window):
        meter.reset()
    for counter in sqs.values():
        counter.reset()
    rounds.sim_seconds.clear()
    notifies: dict[str, list[dict]] = collections.defaultdict(list)
    started = time.perf_counter()
    for _ in range(n):
        for notify in rounds.run(version, metered=True):
            notifies[notify["case"]].append(notify)
    seconds = time.perf_counter() - started
    cases = {case: _by_case(case, meters[case].snapshot(), n, fetch, notifies[case], rounds.sim_seconds[case], version,
                            sqs[case].snapshot())
             for case in CASES}
    in_window = window.snapshot().total("calls")
    handled = sum(meters[case].snapshot().total("calls") for case in CASES)
    return {"cases": cases, "seconds": round(seconds, 1),
            "dynamodb_calls_in_simulator_calls": int(in_window),
            "dynamodb_calls_outside_the_handling": int(in_window - handled)}


def _measure_all(simulator: Any, dynamodb_endpoint: str, pay_env: dict[str, str], n: int, warmup: int) -> dict:
    from local.chalice_client import thread_safe_client
    from chalicelib import queues
    from chalicelib.storage import schema

    from app import app

    _prepare_store()
    fetch = item_fetcher(dynamodb_endpoint)
    meters = {case: CapacityMeter() for case in CASES}
    sqs = {case: CallCounter("sqs") for case in CASES}
    window = CapacityMeter(keep_records=False)
    results: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        stack.enter_context(quiet_app_logs())
        client = stack.enter_context(thread_safe_client(app, stage_name="test", project_dir=str(ROOT)))
        for meter in (*meters.values(), window):
            stack.enter_context(meter)  # detached at the end
            meter.attach_models(schema.ALL_MODELS)
        for counter in sqs.values():
            counter.attach_client(queues._client())
            stack.callback(counter.detach)
        for paused in (*meters.values(), *sqs.values(), window):  # resumed only by the bridge and around sim calls
            stack.enter_context(paused.paused())
        bridge = NotifyBridge(client, simulator, meters, sqs)
        stack.callback(bridge.stop)
        for version in VERSIONS:
            with _pay_settings(version, pay_env, simulator.base_url, bridge.url):
                rounds = Rounds(client, simulator, bridge, window, version)
                results[version] = _measure_version(version, rounds, meters, sqs, window, fetch, n, warmup)
    return results


def run(dynamodb_endpoint: str, sqs_endpoint: str, n: int = N_NOTIFIES, warmup: int = WARMUP) -> dict:
    """Generate WeChat Pay keys (a temporary folder), start the simulator with them, aim the app at
    it, DynamoDB and SQS, and measure every notify case in v3 and v2."""
    from local.pay_setup import DEMO_PAY_ENV, pay_env
    from local.wechat_sim import start_simulator

    with tempfile.TemporaryDirectory(prefix="bench-wechat-pay-") as keys:
        pay = {**DEMO_PAY_ENV, **pay_env(Path(keys))}
        simulator = start_simulator(apps={env.WECHAT_APPID: env.WECHAT_SECRET}, code2session_per_minute=1_000_000,
                                    mchid=pay["WECHAT_PAY_MCH_ID"], api_key=pay["WECHAT_PAY_API_KEY"],
                                    apiv3_key=pay["WECHAT_PAY_APIV3_KEY"], pay_keys_dir=keys,
                                    notify_retry_delays_ms=[50], refund_delay_ms=None)
        try:
            env.point_at(dynamodb_endpoint, simulator.base_url, sqs_endpoint)
            versions = _measure_all(simulator, dynamodb_endpoint, pay, n, warmup)
        finally:
            simulator.stop()
    return {"notifies_per_case": n, "warmup_rounds_per_version": warmup, "order_items": ORDER_ITEMS,
            "delivery_method": "pickup", "refund_line": REFUND_LINE, "labels": LABELS, "versions": versions}
