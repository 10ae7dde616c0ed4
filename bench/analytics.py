"""Analytics at a day's volume: N tracking events (default 100,000) ingested and counted on
DynamoDB Local through the real path, and the reports read with few and with many events.

How: N synthetic events of one day (the last 24 hours: page views 40%, product views 35%,
add-to-cart 15%, shares 10%; 6 traffic sources, 200 products) from N/200 users, two batches of
100 each, go through `services.events.record_events` (what `POST /v1/events` runs after auth and
validation: the per-user rate limit, then TransactWriteItems of conditional Puts), from
`INGEST_THREADS` threads (concurrent requests). Then the local worker (local/worker.py, as
`make run` runs it) reads the `events` table's DynamoDB stream and calls the app's
`count_tracking_events` handler with Lambda's event, 100 records a batch, until the stream is
drained. First the first `SMALL` (1,000) events are ingested and counted and the reports read;
then the rest, and the reports read again. Every DynamoDB call is metered (bench.capacity):
calls, items written, write units.

Reported: events/s ingested and counted; DynamoDB write calls, items written and write units
per event, for ingestion and counting (write units as DynamoDB bills them: 1 per item under
1 KB, 2 in a transaction; DynamoDB Local's own ConsumedCapacity for transactions is far lower
and is shown beside it); `GET /v1/admin/reports/sales` and `.../funnel` over 7
and 30 days (in-process through `chalice.test.Client` with an admin token: p50 ms, DynamoDB
calls and read units per request) with SMALL events and with N: the same calls and units
(O(days)), whatever the number of events; and a check that the funnel report's totals equal
the events generated.

    python -m bench.analytics [--events 100000] [--users N] [--no-write]   (also in `python -m bench`,
                                                                             with --analytics-events)

Caveats: DynamoDB Local (one JVM on this machine's cores) is far slower per call than DynamoDB,
and one worker thread reads the stream (Lambda reads each shard in parallel, and can split a
shard's batches); the figures per event (writes, units) carry over, the rates do not.
"""
from bench import env

env.apply_base()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

from bench import RESULTS_DIR, ROOT  # noqa: E402
from bench.capacity import WRITE_OPERATIONS  # noqa: E402
from bench.stats import summarize_ms  # noqa: E402

N_EVENTS = 100_000
BENCH_EVENTS = 20_000  # in `python -m bench`: 100,000 take ~8 minutes on 2 busy cores (docs/analytics.md)
SMALL = 1_000
BATCH = 100
EVENTS_PER_USER = 200  # two batches each
INGEST_THREADS = 4
REPORT_WARMUP, REPORT_REPEATS = 3, 20
RANGES_DAYS = (7, 30)
REPORTS = ("sales", "funnel")
KINDS = (("page_view", 40), ("product_view", 35), ("add_to_cart", 15), ("share", 10))
SOURCES = (("poster", 20), ("scene_1007", 25), ("scene_1011", 10), ("direct", 30), ("moments_ad", 10),
           ("search", 5))
PRODUCTS = 200
SPREAD_SECONDS = 24 * 3600 - 60
COUNTED = {"page_view": "pv", "product_view": "product_views", "add_to_cart": "add_to_cart", "share": "shares"}


def _events(n: int, users: int, seed: int = 18) -> list[tuple[str, list[dict[str, Any]]]]:
    """(user id, batch of up to 100 event bodies) in sending order: batch b from user b % users."""
    from chalicelib import clock

    rng = random.Random(seed)
    now = clock.now().astimezone(clock.CHINA_TZ)
    kinds, kind_weights = zip(*KINDS)
    sources, source_weights = zip(*SOURCES)
    batches = []
    for number, start in enumerate(range(0, n, BATCH)):
        user = f"bench-visitor-{number % users:05d}"
        body = []
        for index in range(start, min(n, start + BATCH)):
            kind = rng.choices(kinds, kind_weights)[0]
            event: dict[str, Any] = {"event_id": f"bench-{index:07d}", "type": kind,
                                     "at": (now - timedelta(seconds=rng.uniform(0, SPREAD_SECONDS))).isoformat()}
            source = rng.choices(sources, source_weights)[0]
            if source.startswith("scene_"):
                event["scene"] = int(source.split("_")[1])
            elif source != "direct":
                event["source"] = source
            if kind == "page_view":
                event["page"] = rng.choice(("pages/index", "pages/category", "pages/product"))
            else:
                event["product_id"] = f"p-bench-{rng.randrange(PRODUCTS):03d}"
            if kind == "add_to_cart":
                event["sku_id"] = event["product_id"].replace("p-", "sku-")
                event["quantity"] = rng.randint(1, 3)
            body.append(event)
        batches.append((user, body))
    return batches


def _usage(meter: Any) -> dict[str, float]:
    usage = meter.snapshot()
    written = sum(figures["items"] for operation in WRITE_OPERATIONS
                  for figures in usage.operation_tables.get(operation, {}).values())
    transactional = sum(figures["items"] for figures in usage.operation_tables.get("TransactWriteItems", {}).values())
    write_calls = sum(usage.operations[op].calls for op in WRITE_OPERATIONS if op in usage.operations)
    errors = Counter()
    for op in usage.operations.values():
        errors.update(op.errors)
    return {"calls": usage.total("calls"), "write_calls": write_calls, "items_written": written,
            "transactional_items": transactional,
            "write_units": usage.total("write_units"), "read_units": usage.total("read_units"),
            "errors": dict(errors)}


def _add(total: dict[str, Any], part: dict[str, Any]) -> None:
    for name, value in part.items():
        if isinstance(value, dict):
            bucket = total.setdefault(name, {})
            for key, count in value.items():
                bucket[key] = bucket.get(key, 0) + count
        else:
            total[name] = total.get(name, 0) + value


def _ingest(batches: list[tuple[str, list[dict[str, Any]]]], meter: Any) -> dict[str, Any]:
    from chalicelib.schemas.events import EventBatchBody
    from chalicelib.services import events

    def send(batch: tuple[str, list[dict[str, Any]]]) -> int:
        user_id, body = batch
        return events.record_events(user_id, EventBatchBody.model_validate({"events": body})).stored

    meter.reset()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=INGEST_THREADS) as pool:
        stored = sum(pool.map(send, batches))
    return {"seconds": time.perf_counter() - started, "events": sum(len(body) for _, body in batches),
            "stored": stored, "batches": len(batches), **_usage(meter)}


def _count(worker: Any, meter: Any) -> dict[str, Any]:
    meter.reset()
    started, records, batches = time.perf_counter(), 0, 0
    while True:
        deliveries = worker.drain_streams()
        if not deliveries:
            break
        failed = [d for d in deliveries if not d.ok]
        if failed:
            raise RuntimeError(f"the stream consumer failed: {failed[0].error}")
        records += sum(len(d.message_ids) for d in deliveries if d.source == "count_tracking_events")
        batches += sum(1 for d in deliveries if d.source == "count_tracking_events")
    return {"seconds": time.perf_counter() - started, "records": records, "handler_batches": batches,
            **_usage(meter)}


def _reports(client: Any, token: str, meter: Any) -> dict[str, Any]:
    from chalicelib import clock

    today = clock.now().astimezone(clock.CHINA_TZ).date()
    out: dict[str, Any] = {}
    for name in REPORTS:
        for days in RANGES_DAYS:
            path = (f"/v1/admin/reports/{name}?from={(today - timedelta(days=days - 1)).isoformat()}"
                    f"&to={today.isoformat()}")
            headers = {"Authorization": f"Bearer {token}"}
            for _ in range(REPORT_WARMUP):
                client.http.get(path, headers=headers)
            samples = []
            meter.reset()
            for _ in range(REPORT_REPEATS):
                started = time.perf_counter()
                response = client.http.get(path, headers=headers)
                samples.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"GET {path}: HTTP {response.status_code}: {response.body[:300]!r}")
            usage = meter.snapshot()
            out[f"{name}_{days}d"] = {
                "days": days, **{k: v for k, v in summarize_ms(samples).items() if k in ("n", "p50_ms", "p99_ms")},
                "calls": round(usage.total("calls") / REPORT_REPEATS, 2),
                "read_units": round(usage.total("read_units") / REPORT_REPEATS, 2),
                "by_operation": {op: round(u.calls / REPORT_REPEATS, 2) for op, u in sorted(usage.operations.items())},
                "body": json.loads(response.body)}
    return out


def _check(generated: Counter, reports: dict[str, Any]) -> dict[str, Any]:
    """The 30-day funnel's sums against the events generated (every event counted once)."""
    items = reports[f"funnel_{max(RANGES_DAYS)}d"]["body"]["items"]
    counted = {name: sum(item[name] for item in items) for name in ("pv", "product_views", "add_to_cart", "shares")}
    expected = {COUNTED[kind]: generated[kind] for kind in COUNTED}
    return {"generated": expected, "counted": counted, "exact": counted == expected}


def run(dynamodb_endpoint: str, events: int = N_EVENTS, users: int | None = None) -> dict[str, Any]:
    from bench.capacity import CapacityMeter
    from bench.request_cost import quiet_app_logs
    from chalicelib.services.auth import ensure_first_admin
    from chalicelib.storage import schema
    from local.chalice_client import thread_safe_client
    from local.worker import Worker

    env.point_at(dynamodb_endpoint, "http://127.0.0.1:9")
    for model in schema.ALL_MODELS:  # one connection per ingesting thread
        model.Meta.max_pool_connections = INGEST_THREADS + 4
    schema.reset_connections()
    schema.create_all_tables()
    logging.getLogger().setLevel(logging.WARNING)
    from app import app

    users = users or max(1, events // EVENTS_PER_USER)
    batches = _events(events, users)
    small = min(len(batches), max(1, SMALL // BATCH))
    generated = Counter(event["type"] for _, body in batches for event in body)
    worker = Worker(app, stream_start="LATEST")  # only what this bench writes (the engine may be shared)
    worker.drain_streams()
    phases: dict[str, Any] = {}
    ingest_total: dict[str, Any] = {}
    count_total: dict[str, Any] = {}
    with CapacityMeter() as meter, quiet_app_logs(), \
            thread_safe_client(app, stage_name="test", project_dir=str(ROOT)) as client:
        meter.attach_models(schema.ALL_MODELS)
        with meter.paused():
            ensure_first_admin()
            login = client.http.post("/v1/admin/auth/login", headers={"Content-Type": "application/json"},
                                     body=json.dumps({"username": env.BASE_ENV["ADMIN_USERNAME"],
                                                      "password": env.BASE_ENV["ADMIN_PASSWORD"]}).encode())
            token = json.loads(login.body)["token"]
        for phase, part in (("small", batches[:small]), ("all", batches[small:])):
            ingested = _ingest(part, meter) if part else {}
            counted = _count(worker, meter) if part else {}
            _add(ingest_total, ingested)
            _add(count_total, counted)
            reports = _reports(client, token, meter)
            phases[phase] = {"events": sum(len(body) for _, body in batches[:small if phase == "small" else None]),
                             "reports": reports}
    check = _check(generated, phases["all"]["reports"])
    for phase in phases.values():  # keep the JSON small: the bodies were for the check
        for report in phase["reports"].values():
            report.pop("body")
    return {"events": events, "users": users, "batch_size": BATCH, "ingest_threads": INGEST_THREADS,
            "mix": dict(generated), "ingest": _rates(ingest_total, events, "events"),
            "count": _rates(count_total, events, "records"), "phases": phases, "check": check}


def _rates(total: dict[str, Any], events: int, counted: str) -> dict[str, Any]:
    seconds = total.get("seconds", 0.0)
    per = max(1, events)
    return {"seconds": round(seconds, 2), counted: total.get(counted, 0),
            "events_per_second": round(events / seconds, 1) if seconds else None,
            "calls_per_event": round(total.get("calls", 0) / per, 3),
            "write_calls_per_event": round(total.get("write_calls", 0) / per, 3),
            "items_written_per_event": round(total.get("items_written", 0) / per, 3),
            "write_units_per_event": round(total.get("write_units", 0) / per, 3),
            # DynamoDB bills a transaction's item twice; every item here is under 1 KB.
            "dynamodb_write_units_per_event": round((total.get("items_written", 0)
                                                     + total.get("transactional_items", 0)) / per, 3),
            "read_units_per_event": round(total.get("read_units", 0) / per, 3),
            "errors": total.get("errors", {}), **({"stored": total["stored"]} if "stored" in total else {})}


def markdown(result: dict[str, Any]) -> str:
    ingest, count = result["ingest"], result["count"]
    small, full = result["phases"]["small"], result["phases"]["all"]
    lines = [f"## Analytics: a day of {result['events']:,} tracking events from {result['users']:,} users "
             f"(batches of {result['batch_size']}), ingested and counted on DynamoDB Local", "",
             "| | ingest (`POST /v1/events` service, "
             f"{result['ingest_threads']} threads) | count (stream -> consumer, 1 worker) |",
             "|---|---:|---:|",
             f"| events/s | {ingest['events_per_second']} | {count['events_per_second']} |",
             f"| seconds | {ingest['seconds']} | {count['seconds']} |",
             f"| DynamoDB calls per event | {ingest['calls_per_event']} | {count['calls_per_event']} |",
             f"| write calls per event | {ingest['write_calls_per_event']} | {count['write_calls_per_event']} |",
             f"| items written per event | {ingest['items_written_per_event']} | {count['items_written_per_event']} |",
             f"| write units per event on DynamoDB (items < 1 KB; 2 per transactional item) "
             f"| {ingest['dynamodb_write_units_per_event']} | {count['dynamodb_write_units_per_event']} |",
             f"| write units per event as DynamoDB Local reports them | {ingest['write_units_per_event']} "
             f"| {count['write_units_per_event']} |",
             f"| read units per event | {ingest['read_units_per_event']} | {count['read_units_per_event']} |",
             "", f"Reports with {small['events']:,} events and with {full['events']:,} (per request, "
             f"median of {REPORT_REPEATS}; in-process through `chalice.test.Client`):", "",
             f"| report | days | p50 ms ({small['events']:,}) | p50 ms ({full['events']:,}) "
             f"| DynamoDB calls ({small['events']:,}) | calls ({full['events']:,}) "
             f"| read units ({small['events']:,}) | read units ({full['events']:,}) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key, few in small["reports"].items():
        many = full["reports"][key]
        lines.append(f"| `GET /v1/admin/reports/{key.rsplit('_', 1)[0]}` | {few['days']} | {few['p50_ms']} | "
                     f"{many['p50_ms']} | {few['calls']} | {many['calls']} | {few['read_units']} | "
                     f"{many['read_units']} |")
    check = result["check"]
    lines += ["", f"Counted exactly: **{'yes' if check['exact'] else 'NO'}** (30-day funnel sums "
              f"{check['counted']} against the events generated {check['generated']}). Errors: ingest "
              f"{ingest['errors'] or 'none'}, count {count['errors'] or 'none'} (a refused transaction is "
              "retried; its units show only in its retry)."]
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any]) -> None:
    """Standalone runs: bench/results/analytics.json (`python -m bench` writes it through bench.report)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "analytics.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n",
                                                encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=N_EVENTS)
    parser.add_argument("--users", type=int, default=None, help=f"default: events / {EVENTS_PER_USER}")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results as it is")
    args = parser.parse_args(argv)
    if args.events < 1 or (args.users is not None and args.users < 1):
        parser.error("--events and --users must be at least 1")
    from local.dynamodb_local import start_dynamodb

    handle = start_dynamodb()
    try:
        result = run(handle.endpoint, args.events, args.users)
    finally:
        handle.stop()
    if not args.no_write:
        write(result)
    print(markdown(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
