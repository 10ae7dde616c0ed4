"""DynamoDB calls, capacity and in-process latency per request (login, /v1/me, /health).

Requests go through Chalice's own test client: no HTTP server, but the app's routing,
validation, auth and JSON. Storage is DynamoDB Local; WeChat is the simulator, a thread of this
process reached over loopback HTTP like the real one. Login codes follow the simulator's rule
that the part before the first "-" names the user: `new17-1` is the first login of user new17,
`alice-17` one more login of alice.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from bench import ROOT, env, theoretical
from bench.capacity import CapacityMeter, Usage
from bench.stats import summarize_ms

N_REQUESTS = 100
WARMUP = 10
JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    send: Callable[[int], Any]  # request index -> chalice.test HTTPResponse
    check: Callable[[dict], bool]  # is the 200 body the expected one?


def _scenarios(client: Any) -> list[Scenario]:
    def login(code: str) -> Any:
        return client.http.post("/v1/auth/login", headers=JSON_HEADERS, body=json.dumps({"code": code}).encode())

    setup = login("alice-setup")  # alice exists before her measured logins, and /v1/me has a token
    token = _body(setup, "alice's first login")["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    return [
        Scenario("login_new_user", "POST /v1/auth/login (new user)",
                 lambda i: login(f"new{i}-1"), lambda body: body["is_new_user"] is True),
        Scenario("login_returning_user", "POST /v1/auth/login (returning user)",
                 lambda i: login(f"alice-{i}"), lambda body: body["is_new_user"] is False),
        Scenario("me", "GET /v1/me (bearer token)",
                 lambda i: client.http.get("/v1/me", headers=bearer), lambda body: "user_id" in body),
        Scenario("health", "GET /health (no I/O: app + test-client floor)",
                 lambda i: client.http.get("/health"), lambda body: body.get("ok") is True),
    ]


def _body(response: Any, what: str) -> dict:
    if response.status_code != 200:
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.body[:500]!r}")
    return json.loads(response.body)


def measure(scenario: Scenario, meter: CapacityMeter, simulator: Any, n: int, warmup: int) -> tuple[dict, Usage]:
    """Warm up, then time n requests one after another, metering DynamoDB and WeChat calls."""
    for i in range(n, n + warmup):  # indices past the measured ones: fresh codes, same shape
        _checked(scenario, scenario.send(i))
    meter.reset()
    wechat_before = simulator.state.calls()
    latencies = []
    for i in range(n):
        started = time.perf_counter()
        response = scenario.send(i)
        latencies.append(time.perf_counter() - started)
        _checked(scenario, response)
    usage = meter.snapshot()
    wechat = {name: round((count - wechat_before.get(name, 0)) / n, 3)
              for name, count in simulator.state.calls().items() if count != wechat_before.get(name, 0)}
    return {"label": scenario.label, "latency": summarize_ms(latencies), "dynamodb": usage.per_request(n),
            "wechat_calls_per_request": wechat}, usage


def _checked(scenario: Scenario, response: Any) -> None:
    if not scenario.check(_body(response, scenario.label)):
        raise RuntimeError(f"{scenario.label}: unexpected body {response.body[:500]!r}")


@contextlib.contextmanager
def quiet_app_logs() -> Iterator[None]:
    """Send the app's JSON log lines to /dev/null: still formatted (a real per-request cost,
    as in Lambda), but not flooding the terminal."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    with open(os.devnull, "w", encoding="utf-8") as sink:
        previous = [h.setStream(sink) for h in handlers]
        try:
            yield
        finally:
            for handler, stream in zip(handlers, previous):
                handler.setStream(stream)


def item_fetcher(endpoint: str) -> theoretical.FetchItem:
    """Reads stored items with a separate, unmetered client (for the theoretical units)."""
    import boto3

    client = boto3.session.Session().client("dynamodb", endpoint_url=endpoint, region_name=env.BASE_ENV["AWS_REGION"])
    return lambda table, key: client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")


def theoretical_per_request(usage: Usage, fetch: theoretical.FetchItem, n: int) -> dict:
    found = theoretical.estimate(usage.records, fetch)
    return {"read_units": round(found["read_units"] / n, 3), "write_units": round(found["write_units"] / n, 3),
            "not_estimated_calls": found["not_estimated_calls"],
            "by_operation": {op: {kind: round(value / n, 3) for kind, value in totals.items()}
                             for op, totals in sorted(found["by_operation"].items())},
            "by_operation_table": {op: {table: {kind: round(value / n, 3) for kind, value in totals.items()}
                                        for table, totals in sorted(tables.items())}
                                   for op, tables in sorted(found["by_operation_table"].items())}}


def _measure_all(simulator: Any, endpoint: str, n: int, warmup: int) -> dict[str, dict]:
    from local.chalice_client import thread_safe_client
    from chalicelib.storage import schema

    from app import app

    schema.create_all_tables()
    fetch, results = item_fetcher(endpoint), {}
    with CapacityMeter() as meter, quiet_app_logs(), \
            thread_safe_client(app, stage_name="test", project_dir=str(ROOT)) as client:
        meter.attach_models(schema.ALL_MODELS)
        for scenario in _scenarios(client):
            result, usage = measure(scenario, meter, simulator, n, warmup)
            result["theoretical"] = theoretical_per_request(usage, fetch, n)
            results[scenario.name] = result
    return results


def run(dynamodb_endpoint: str, n: int = N_REQUESTS, warmup: int = WARMUP) -> dict:
    """Start the WeChat simulator, aim the app at it and DynamoDB, measure every scenario."""
    from local.wechat_sim import start_simulator

    # The per-openid login limit (100/min by default) would throttle alice's logins.
    simulator = start_simulator(apps={env.WECHAT_APPID: env.WECHAT_SECRET}, code2session_per_minute=1_000_000)
    try:
        env.point_at(dynamodb_endpoint, simulator.base_url)
        return {"requests_per_scenario": n, "warmup_per_scenario": warmup,
                "scenarios": _measure_all(simulator, dynamodb_endpoint, n, warmup)}
    finally:
        simulator.stop()
