"""Throughput: add-to-cart and place-order requests/s with 1 and 4 worker processes against ONE
DynamoDB Local, beside the engine's raw UpdateItem rate measured by the same processes.

Each worker is a process of its own (spawned: a fresh interpreter, as a Lambda instance is)
with its own app instance driven in process by `chalice.test.Client`, as bench.shop does, and
its own users, so no two workers touch one cart. The parent process serves the WeChat
simulator (logins, untimed) and moto's SQS (place order queues its pay-deadline timer), and
seeds the demo store with stock for every order.

Per configuration (1 worker, then 4), every worker: logs in its users and gives each an
address, warms up (untimed), then runs its phases, all workers starting each phase together
(a barrier):
  raw: `RAW_UPDATES` boto3 UpdateItems on an item of its own (bench.engine_floor's call);
  then `ROUNDS` times: add: each of its users adds the 3 lines of bench.shop's cart (1st, 2nd,
  3rd line); order: each user places an order of that 3-line cart (express, as in bench.shop).
A phase's rate is its requests over its wall time (per round, first start to last finish
across the workers); latencies are per request. Before the first configuration the parent
warms DynamoDB Local up with the same requests from its own app instance. DynamoDB calls per
request are counted by a hook on every model's client (no ReturnConsumedCapacity: no cost
added to the calls).

    python -m bench.throughput [--workers 1,4] [--users 8] [--json PATH]   (also part of `python -m bench`)

Run alone it prints its markdown section (bench/report.py, `throughput_markdown`) and writes
nothing unless --json names a file.
Caveat: the workers, DynamoDB Local (a JVM) and moto's SQS share this machine's cores: with
fewer cores than workers + 1, 4 workers measure contention for the CPU as much as the app.
"""
from bench import env

env.apply_base()  # before anything imports chalicelib or app: table names are read at import time

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import queue  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

from bench import ROOT  # noqa: E402
from bench.stats import summarize_ms  # noqa: E402

WORKER_COUNTS = (1, 4)
USERS_PER_WORKER = 8  # few logins to set up: each user fills and orders its cart ROUNDS times
ROUNDS = 4  # each round: every user adds 3 lines, then orders them (96 adds and 32 orders per worker)
RAW_UPDATES = 300  # per worker
WARMUP_ROUNDS = 2  # per worker: a user fills a cart and orders it, untimed
PARENT_FLOOR_WARMUP = 300  # raw UpdateItems before the first configuration (DynamoDB Local's JIT)
PARENT_WARM_USERS = 4  # and this many carts filled and ordered twice by the parent's own app, untimed
PHASES = ("raw", "add", "order")
BARRIER_TIMEOUT_S = 180  # a worker that fails breaks the barrier: the others stop too
JOIN_TIMEOUT_S = 300
RESTOCK_UNITS = 100_000


# --------------------------------------------------------------------------- the parent


def run(dynamodb_endpoint: str, sqs_endpoint: str, workers: tuple[int, ...] = WORKER_COUNTS,
        users: int = USERS_PER_WORKER) -> dict[str, Any]:
    """Seed the store, start the WeChat simulator, then each configuration's worker processes."""
    from bench import engine_floor, shop
    from local.wechat_sim import start_simulator

    started = time.monotonic()
    simulator = start_simulator(apps={env.WECHAT_APPID: env.WECHAT_SECRET}, code2session_per_minute=1_000_000)
    try:
        env.point_at(dynamodb_endpoint, simulator.base_url, sqs_endpoint)
        _prepare_store(shop)
        floor_client = engine_floor.make_client(dynamodb_endpoint)
        engine_floor.ensure_table(floor_client)
        update = engine_floor.update_item(floor_client)
        for _ in range(PARENT_FLOOR_WARMUP):
            update()
        _warm_engine()
        endpoints = {"dynamodb": dynamodb_endpoint, "sqs": sqs_endpoint, "wechat": simulator.base_url}
        configs = {str(count): _run_config(count, users, endpoints) for count in workers}
    finally:
        simulator.stop()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"worker_counts": list(workers), "users_per_worker": users, "rounds": ROUNDS,
            "raw_updates_per_worker": RAW_UPDATES, "warmup_rounds_per_worker": WARMUP_ROUNDS, "cart": shop.CART, "usable_cores": usable,
            "configs": configs, "scaling": _scaling(configs, workers),
            "run_seconds": round(time.monotonic() - started, 1)}


def _prepare_store(shop: Any) -> None:
    from chalicelib import queues
    from chalicelib.services import stock
    from chalicelib.storage import catalog_batch, schema
    from local.seed import seed_demo_store

    schema.create_all_tables()
    queues.create_all_queues()
    if len(catalog_batch.get_sellable_skus(list(shop.CART))) < len(shop.CART):  # not seeded by bench.shop
        seed_demo_store(marketing=False)
    for sku_id in shop.CART:
        stock.adjust_stock(sku_id, stock.StockChange(sku_id, delta=RESTOCK_UNITS), "bench throughput", "bench")


def _warm_engine() -> None:
    """Requests of every kind the workers send, from this process's own app, untimed: DynamoDB
    Local (a JVM) runs its first calls of each kind interpreted, which would slow down
    whichever configuration runs first (when run alone; within `python -m bench` it is warm)."""
    from local.chalice_client import thread_safe_client

    from app import app
    from bench.request_cost import quiet_app_logs

    with quiet_app_logs(), thread_safe_client(app, stage_name="test", project_dir=str(ROOT)) as client:
        driver = _Driver(client)
        for k in range(PARENT_WARM_USERS):
            shopper = driver.shopper(f"tpwarm{k}")
            for _ in range(2):
                driver.fill_cart(shopper, timed=None)
                driver.place_order(shopper, timed=None)


def _run_config(count: int, users: int, endpoints: dict[str, str]) -> dict[str, Any]:
    import multiprocessing

    from local.sqs_reset import recreate_all_queues

    recreate_all_queues()  # moto's SQS slows with every queued timer: each configuration starts empty
    load_before = _load()
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(count, timeout=BARRIER_TIMEOUT_S), context.Queue()
    processes = [context.Process(target=_worker, name=f"throughput-{count}-{index}",
                                 args=(index, count, users, endpoints, barrier, results)) for index in range(count)]
    for process in processes:
        process.start()
    reports, deadline = [], time.monotonic() + JOIN_TIMEOUT_S
    try:
        while len(reports) < count and time.monotonic() < deadline:
            try:
                reports.append(results.get(timeout=1.0))
            except queue.Empty:
                if not any(process.is_alive() for process in processes) and results.empty():
                    break  # a worker died without a word: no use waiting
    finally:
        for process in processes:
            process.join(timeout=max(0.1, deadline - time.monotonic()))
            if process.is_alive():  # only our own children, by their handle
                process.terminate()
                process.join(timeout=5)
    failures = [report["error"] for report in reports if "error" in report]
    if failures or len(reports) < count:
        raise RuntimeError(f"throughput with {count} workers: {len(reports)}/{count} reports; "
                           f"{failures or 'timed out'}")
    return {**_aggregate(reports), "load_before": load_before, "load_after": _load()}


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _aggregate(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Per phase: requests over wall time, the wall time of each round being its first start to
    its last finish over the workers (rounds are apart: each starts at a barrier)."""
    phases = {}
    for phase in PHASES:
        rounds = list(zip(*(report["phases"][phase] for report in reports)))  # [round][worker]
        parts = [part for round_ in rounds for part in round_]
        requests = sum(len(part["latencies"]) for part in parts)
        wall = sum(max(part["end"] for part in round_) - min(part["start"] for part in round_) for round_ in rounds)
        calls = Counter()
        for part in parts:
            calls.update(part["calls"])
        per_worker = [(sum(len(p["latencies"]) for p in report["phases"][phase]),
                       sum(p["end"] - p["start"] for p in report["phases"][phase])) for report in reports]
        phases[phase] = {
            "requests": requests, "rounds": len(rounds), "wall_s": round(wall, 3),
            "per_second": round(requests / wall, 1),
            "per_worker_per_second": [round(n / seconds, 1) for n, seconds in per_worker],
            "latency": summarize_ms([s for part in parts for s in part["latencies"]]),
            "dynamodb_calls_per_request": round(sum(calls.values()) / requests, 3),
            "dynamodb_calls_by_operation": {op: round(n / requests, 3) for op, n in sorted(calls.items())},
        }
    return {"workers": len(reports), "phases": phases,
            "setup_s": round(max(report["setup_s"] for report in reports), 1)}


def _scaling(configs: dict[str, dict], workers: tuple[int, ...]) -> dict[str, Any]:
    if len(workers) < 2:
        return {}
    first, last = configs[str(workers[0])]["phases"], configs[str(workers[-1])]["phases"]
    return {phase: round(last[phase]["per_second"] / first[phase]["per_second"], 2) for phase in PHASES}


# ---------------------------------------------------------------------------- a worker


def _worker(index: int, count: int, users: int, endpoints: dict[str, str], barrier: Any, results: Any) -> None:
    """One process: its own app, users and floor item; reports its phases through `results`."""
    try:
        env.apply_base()
        env.point_at(endpoints["dynamodb"], endpoints["wechat"], endpoints["sqs"])
        results.put(_work(index, count, users, endpoints["dynamodb"], barrier))
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which fails the run
        barrier.abort()
        results.put({"worker": index, "error": f"{type(error).__name__}: {error}"})


def _work(index: int, count: int, users: int, dynamodb_endpoint: str, barrier: Any) -> dict[str, Any]:
    from local.chalice_client import thread_safe_client

    from app import app
    from bench import engine_floor
    from bench.request_cost import quiet_app_logs

    started = time.monotonic()
    floor_client = engine_floor.make_client(dynamodb_endpoint)
    floor_update = _own_floor_update(floor_client, f"throughput-{count}-{index}")
    with quiet_app_logs(), thread_safe_client(app, stage_name="test", project_dir=str(ROOT)) as client:
        driver = _Driver(client)
        prefix = f"tp{count}w{index}"
        for round_ in range(WARMUP_ROUNDS):
            warm = driver.shopper(f"{prefix}warm{round_}")
            driver.fill_cart(warm, timed=None)
            driver.place_order(warm, timed=None)
        shoppers = [driver.shopper(f"{prefix}u{k}") for k in range(users)]
        for _ in range(50):
            floor_update()
        counter = _CallCounter()
        setup_s = time.monotonic() - started
        phases: dict[str, list] = {"raw": [_phase(barrier, counter, lambda timed: [
            timed(floor_update) for _ in range(RAW_UPDATES)], count_calls=False)], "add": [], "order": []}
        for _ in range(ROUNDS):
            phases["add"].append(_phase(barrier, counter, lambda timed: [driver.fill_cart(s, timed) for s in shoppers]))
            phases["order"].append(_phase(barrier, counter,
                                          lambda timed: [driver.place_order(s, timed) for s in shoppers]))
        counter.detach()
    return {"worker": index, "setup_s": setup_s, "phases": phases}


def _phase(barrier: Any, counter: "_CallCounter", body: Any, count_calls: bool = True) -> dict[str, Any]:
    latencies: list[float] = []

    def timed(send: Any) -> Any:
        begun = time.perf_counter()
        answer = send()
        latencies.append(time.perf_counter() - begun)
        return answer

    barrier.wait()
    counter.reset(enabled=count_calls)
    start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the machine
    body(timed)
    end = time.monotonic()
    return {"start": start, "end": end, "latencies": latencies, "calls": dict(counter.calls)}


def _own_floor_update(client: Any, pk: str) -> Any:
    """engine_floor's UpdateItem, on an item of this worker's own (workers never contend on one)."""
    from bench import engine_floor

    update = {**engine_floor.UPDATE, "Key": {"pk": {"S": pk}}}
    return lambda: client.update_item(**update)


class _Driver:
    """The requests of one worker's users, through its app's test client."""

    def __init__(self, client: Any) -> None:
        from bench import shop

        self.client, self.shop = client, shop

    def _json(self, response: Any, what: str, status: int = 200) -> dict:
        return self.shop._json(response, what, status)

    def shopper(self, name: str) -> dict[str, str]:
        call = self.shop._call
        token = self._json(call(self.client, "POST", "/v1/auth/login", {"code": f"{name}-1"}), "login")["token"]
        address = self._json(call(self.client, "POST", "/v1/addresses", self.shop.ADDRESS, token=token), "address",
                             201)["address_id"]
        return {"token": token, "address_id": address}

    def fill_cart(self, shopper: dict[str, str], timed: Any) -> None:
        for number, (sku_id, quantity) in enumerate(self.shop.CART.items(), 1):
            send = lambda: self.shop._call(self.client, "POST", "/v1/cart/items",  # noqa: E731
                                           {"sku_id": sku_id, "quantity": quantity}, token=shopper["token"])
            body = self._json(timed(send) if timed else send(), f"add {sku_id}")
            if len(body["lines"]) != number:
                raise RuntimeError(f"add {sku_id}: {len(body['lines'])} lines, expected {number}")

    def place_order(self, shopper: dict[str, str], timed: Any) -> None:
        order = {"address_id": shopper["address_id"], "checkout_token": uuid.uuid4().hex}
        send = lambda: self.shop._call(self.client, "POST", "/v1/orders", order, token=shopper["token"])  # noqa: E731
        body = self._json(timed(send) if timed else send(), "place order", 201)
        if len(body["lines"]) != len(self.shop.CART) or body["status"] != "pending_payment":
            raise RuntimeError(f"place order: unexpected body {json.dumps(body)[:300]}")


class _CallCounter:
    """DynamoDB calls by operation through every model's client (the app's calls only)."""

    def __init__(self) -> None:
        from chalicelib.storage import schema

        self.calls: Counter = Counter()
        self.enabled = False
        self._clients = list({id(c): c for c in (m._get_connection().connection.client
                                                 for m in schema.ALL_MODELS)}.values())
        for client in self._clients:
            client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        if self.enabled:
            self.calls[model.name] += 1

    def reset(self, enabled: bool) -> None:
        self.calls, self.enabled = Counter(), enabled

    def detach(self) -> None:
        for client in self._clients:
            client.meta.events.unregister("before-call.dynamodb", self._count)


# ---------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default=",".join(map(str, WORKER_COUNTS)),
                        help="comma-separated worker process counts (default 1,4)")
    parser.add_argument("--users", type=int, default=USERS_PER_WORKER, help="users per worker")
    parser.add_argument("--json", default=None, help="also write the result as JSON to this file")
    args = parser.parse_args(argv)
    workers = tuple(int(part) for part in args.workers.split(",") if part.strip())
    if not workers or min(workers) < 1 or args.users < 1:
        parser.error("worker counts and --users must be at least 1")
    from bench import shop
    from local.dynamodb_local import start_dynamodb

    started = time.monotonic()
    handle = start_dynamodb()
    sqs = None
    try:
        sqs = shop.SqsServer()
        os.environ["AWS_ENDPOINT_URL_SQS"] = sqs.endpoint
        result = run(handle.endpoint, sqs.endpoint, workers=workers, users=args.users)
    finally:
        if sqs is not None:
            sqs.stop()
        handle.stop()
    result["engine"], result["bench_seconds"] = handle.engine, round(time.monotonic() - started, 1)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2, ensure_ascii=False)
            out.write("\n")
    from bench.report import throughput_markdown

    print(throughput_markdown(result))
    print(f"\n(engine {handle.engine}; {result['bench_seconds']} s in all, {result['run_seconds']} s after "
          "DynamoDB Local was up)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
