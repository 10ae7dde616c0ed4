"""python -m bench: cold start, per-request DynamoDB cost, store requests, pay notifies and the engine floor -> bench/results/.

Order matters: cold start first, before DynamoDB Local's JVM starts and competes for the CPU;
then DynamoDB Local once (and moto's SQS server, for the order timers), for the engine floor
(which also warms the JVM), the auth requests, the store requests (bench.shop) and WeChat Pay's
notifies in v3 and v2 (bench.pay_notify), the flash-sale surge with 1 and 8 stock shards
(bench.flash_surge), add-to-cart and place-order throughput with 1 and 4 worker processes
(bench.throughput), and a day of analytics events ingested, counted and reported (bench.analytics).
"""
from bench import env

env.apply_base()  # before anything imports chalicelib or app: table names are read at import time

import argparse  # noqa: E402
import datetime  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from importlib import metadata  # noqa: E402

from bench import ROOT, cold_start, engine_floor, flash_surge, pay_notify, report, request_cost, shop  # noqa: E402
from bench import analytics, throughput  # noqa: E402

LIBRARIES = ("boto3", "botocore", "pynamodb", "chalice", "pydantic")


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _meta(engine: str, seconds: float, load_before: float | None) -> dict:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(terse=True),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "load_before": load_before,
        "load_after": _load(),
        "dynamodb_engine": engine,
        "versions": {name: metadata.version(name) for name in LIBRARIES},
        "bench_seconds": round(seconds, 1),
    }


def _step(message: str) -> None:
    print(f"bench: {message}", flush=True)


def _measure_on_dynamodb(requests: int, shop_requests: int, notifies: int, surge_entries: int, throughput_users: int,
                         analytics_events: int) -> tuple[str, dict, dict, dict, dict, dict, dict, dict]:
    from local.dynamodb_local import start_dynamodb

    _step("starting DynamoDB on 127.0.0.1")
    handle = start_dynamodb()
    sqs = None
    try:
        sqs = shop.SqsServer()
        os.environ["AWS_ENDPOINT_URL_SQS"] = sqs.endpoint  # before the app is imported
        _step(f"moto's SQS server on {sqs.endpoint}")
        _step(f"engine floor on {handle.engine} ({handle.endpoint})")
        floor = engine_floor.run(handle.endpoint)
        _step(f"per-request cost: {requests} requests per scenario")
        cost = request_cost.run(handle.endpoint, n=requests)
        _step(f"store requests: demo store, {shop_requests} requests per scenario, each beside a raw UpdateItem")
        store = shop.run(handle.endpoint, sqs.endpoint, n=shop_requests)
        _step(f"pay notifies: WeChat Pay {' and '.join(pay_notify.VERSIONS)}, {notifies} notifies per case "
              f"({', '.join(pay_notify.CASES)})")
        notify = pay_notify.run(handle.endpoint, sqs.endpoint, n=notifies)
        _step(f"flash-sale surge: {surge_entries} entries for {flash_surge.UNITS} units, shards "
              f"{' and '.join(map(str, flash_surge.SHARD_CONFIGS))}")
        surge = flash_surge.run(handle.endpoint, sqs.endpoint, entries=surge_entries)
        _step(f"throughput: {' and '.join(map(str, throughput.WORKER_COUNTS))} worker processes, "
              f"{throughput_users} users each")
        rates = throughput.run(handle.endpoint, sqs.endpoint, users=throughput_users)
        _step(f"analytics: {analytics_events} tracking events ingested, counted from the stream, reports read")
        activity = analytics.run(handle.endpoint, events=analytics_events)
    finally:
        if sqs is not None:
            sqs.stop()
        handle.stop()
    return handle.engine, floor, cost, store, notify, surge, rates, activity


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--cold-runs", type=int, default=cold_start.RUNS, help="subprocesses per command")
    parser.add_argument("--requests", type=int, default=request_cost.N_REQUESTS, help="requests per scenario")
    parser.add_argument("--shop-requests", type=int, default=shop.N_REQUESTS,
                        help="requests per store scenario (cart, products, checkout, orders)")
    parser.add_argument("--notifies", type=int, default=pay_notify.N_NOTIFIES,
                        help="WeChat Pay notifies per case and version (first, duplicate, refused, refund)")
    parser.add_argument("--surge-entries", type=int, default=flash_surge.N_ENTRIES,
                        help="flash-sale entries per shard configuration")
    parser.add_argument("--throughput-users", type=int, default=throughput.USERS_PER_WORKER,
                        help="users per worker process in the throughput bench (each adds 3 lines and orders them, "
                             f"{throughput.ROUNDS} times)")
    parser.add_argument("--analytics-events", type=int, default=analytics.BENCH_EVENTS,
                        help="tracking events in the analytics bench "
                             f"(python -m bench.analytics: {analytics.N_EVENTS})")
    args = parser.parse_args(argv)
    if min(args.cold_runs, args.requests, args.shop_requests, args.notifies, args.surge_entries,
           args.throughput_users, args.analytics_events) < 1:
        parser.error("every count must be at least 1")
    started, load_before = time.perf_counter(), _load()
    _step(f"cold start: {args.cold_runs} runs of each command")
    cold = cold_start.run(args.cold_runs)
    engine, floor, cost, store, notify, surge, rates, activity = _measure_on_dynamodb(
        args.requests, args.shop_requests, args.notifies, args.surge_entries, args.throughput_users,
        args.analytics_events)
    results = {"meta": _meta(engine, time.perf_counter() - started, load_before),
               "cold_start": cold, "request_cost": cost, "engine_floor": floor, "shop": store, "pay_notify": notify,
               "flash_surge": surge, "throughput": rates, "analytics": activity}
    for path in report.write(results):
        _step(f"wrote {path.relative_to(ROOT)}")
    print(report.markdown(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
