"""Flash-sale surge: N entries (default 10,000) from N/4 users for 100 units, limit 1 per user,
once with the sale's stock on 1 shard and once on 8, in one run, on DynamoDB Local + moto's SQS.

How: `ENTRANTS` threads (each a warm Lambda instance) call the admission use case
(`services.flash_admission.enter`, what `POST /v1/flash-sales/{id}/entries` runs after auth and
validation), users in a shuffled order, each pressing 4 times in a row from its own loopback
address, while `CONSUMERS`
threads drain the flash-entries queue in batches of 10 with the real consumer, as Lambda's SQS
event source would. Every DynamoDB request is tallied by a botocore hook, attributed to the
entry (by its outcome) or to the consumer: its calls (read calls: GetItem, BatchGetItem, Query,
Scan; write calls: the rest), items read (a BatchGetItem of 2 keys reads 2), items written (a
TransactWriteItems of 3 items is 3 writes), and stock writes (on the SKU or a sale's stock shard).
The threads share one process, so they share admission's per-instance sale cache and entry
counts (as 16 concurrent requests of one Lambda instance would; a real instance serves one at
a time), and the consumer's sold-out flag drops that cache at once, where another instance
would see it within SALE_CACHE_SECONDS.

Reported per configuration: admission p50/p99 (all entries, and per outcome) with the number
of entrant threads, and entries/s; DynamoDB calls, items read and written per entry by outcome
(accepted, sold_out, limit_exceeded, ...), per refused entry (every refusal together) and per
entry overall, stock writes among them; drain time (first entry to the last ticket decided, and
the tail after the last entry); the consumer's writes per message; and the invariants (orders
== units, no user twice). Then the 8-shard figures as ratios of the 1-shard ones.

    python -m bench.flash_surge [--entries 10000] [--no-write]      (also part of `python -m bench`)

`--no-write` prints the tables without overwriting `bench/results/flash_surge.{json,md}`.

Caveat: DynamoDB Local runs on this machine's 2 cores and has no per-item write limit, so the
shard count cannot show its real benefit (spreading writes over items capped at ~1,000/s each)
here; what it shows is the cost of sharding (reads of N shards) and that nothing breaks.
"""
from bench import env

env.apply_base()

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from typing import Any  # noqa: E402

from bench import RESULTS_DIR  # noqa: E402
from bench.stats import summarize_ms  # noqa: E402

N_ENTRIES = 10_000
ENTRIES_PER_USER = 4
UNITS = 100
SHARD_CONFIGS = (1, 8)
ENTRANTS = 16
CONSUMERS = 4
WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem"}
READ_OPS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
REFUSED = "entry:refused (every reason)"
ALL_ENTRIES = "entry:all"


class DynamoTally:
    """Counts DynamoDB requests and items written, per label set on the calling thread."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.lock = threading.Lock()
        self.calls: dict[str, Counter] = defaultdict(Counter)
        self._clients: list[Any] = []

    def attach(self) -> None:
        from chalicelib.storage import schema

        seen = set()
        for model in schema.ALL_MODELS:
            client = model._get_connection().connection.client
            if id(client) not in seen:
                seen.add(id(client))
                client.meta.events.register("before-parameter-build.dynamodb", self._before_call)
                self._clients.append(client)

    def detach(self) -> None:
        for client in self._clients:
            client.meta.events.unregister("before-parameter-build.dynamodb", self._before_call)
        self._clients.clear()

    def label(self, name: str | None) -> None:
        self.local.label = name
        self.local.pending = Counter()

    def take(self) -> Counter:
        """What this thread did since label(); the caller files it under the outcome."""
        pending = getattr(self.local, "pending", Counter())
        self.local.pending = Counter()
        return pending

    def file(self, label: str, counts: Counter, entries: int = 1) -> None:
        with self.lock:
            self.calls[label].update(counts)
            self.calls[label]["entries"] += entries

    def _before_call(self, params: dict, model: Any, **_: Any) -> None:
        if getattr(self.local, "label", None) is None:
            return
        pending = self.local.pending
        pending["calls"] += 1
        if model.name in READ_OPS:
            pending["read_calls"] += 1
            pending["items_read"] += _items_read(model.name, params)
        else:
            pending["write_calls"] += 1
        for table, key in _written_items(model.name, params):
            pending["writes"] += 1
            if table.endswith("skus") or (table.endswith("flash_counters") and "#stock#" in key):
                pending["stock_writes"] += 1


def _items_read(operation: str, body: dict) -> int:
    """Items a read asks for by key (Query and Scan: 0, they read what they match)."""
    if operation == "GetItem":
        return 1
    if operation == "BatchGetItem":
        return sum(len(table.get("Keys", [])) for table in body.get("RequestItems", {}).values())
    if operation == "TransactGetItems":
        return len(body.get("TransactItems", []))
    return 0


def _written_items(operation: str, body: dict) -> list[tuple[str, str]]:
    if operation in WRITE_OPS:
        return [(body.get("TableName", ""), json.dumps(body.get("Key") or body.get("Item", {})))]
    if operation == "TransactWriteItems":
        written = []
        for item in body.get("TransactItems", []):
            for kind in ("Put", "Update", "Delete"):
                if kind in item:
                    part = item[kind]
                    written.append((part.get("TableName", ""), json.dumps(part.get("Key") or part.get("Item", {}))))
        return written
    if operation == "BatchWriteItem":
        return [(table, "") for table, requests in body.get("RequestItems", {}).items() for _ in requests]
    return []


def _prepare(shards: int) -> str:
    from chalicelib import clock
    from chalicelib.schemas.flash_sales import CreateFlashSaleBody
    from chalicelib.services import flash_sales
    from chalicelib.storage import catalog

    sku_id = f"surge-card-{shards}"
    catalog.create_product(f"p-{sku_id}", name="礼品卡", category_path=["c-bench"], description=None, images=[],
                           keywords=[], virtual=True, now=clock.now())
    catalog.create_sku(sku_id, product_id=f"p-{sku_id}", specs={}, price_fen=10000, stock=1000)
    now = clock.now()
    body = CreateFlashSaleBody.model_validate({
        "sku_id": sku_id, "price_fen": 100, "quantity": UNITS, "per_user_limit": 1, "shards": shards,
        "starts_at": now.isoformat(), "ends_at": now.replace(year=now.year + 1).isoformat()})
    return flash_sales.create_sale(body)[0].sale_id


def _consume(tally: DynamoTally, stop: threading.Event, decided_at: list[float]) -> Counter:
    import boto3

    from chalicelib import queues
    from chalicelib.schemas.flash_sales import FlashEntryMessage
    from chalicelib.services import flash_orders

    sqs, url = boto3.client("sqs"), queues.queue_url(queues.FLASH_ENTRIES.name)
    outcomes: Counter = Counter()
    for _ in range(100_000):
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       VisibilityTimeout=60).get("Messages", [])
        if not received:
            if stop.is_set():
                break
            time.sleep(0.005)
            continue
        tally.label("consumer")
        outcomes.update(flash_orders.process_entries(
            [FlashEntryMessage.model_validate_json(message["Body"]) for message in received]))
        tally.file("consumer", tally.take(), entries=len(received))
        tally.label(None)
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(received)])
        decided_at.append(time.perf_counter())
    return outcomes


def _surge(sale_id: str, sku_id: str, entries: int, tally: DynamoTally) -> dict[str, Any]:
    from chalicelib.errors import AppError
    from chalicelib.schemas.flash_sales import EntryBody
    from chalicelib.services import flash_admission

    users = max(1, entries // ENTRIES_PER_USER)
    shard_offset = 1 + SHARD_CONFIGS.index(int(sku_id.rsplit("-", 1)[1])) * 4  # fresh addresses per sale
    order = list(range(users))
    random.Random(11).shuffle(order)
    # Users arrive in a random order and each presses ENTRIES_PER_USER times in a row, as buyers
    # do in a surge (so their rate-limit buckets are in use, the common case).
    attempts = [user for user in order for _ in range(ENTRIES_PER_USER)][:entries]
    latencies: dict[str, list[float]] = defaultdict(list)

    def attempt(user: int) -> str:
        body = EntryBody.model_validate({"sku_id": sku_id, "quantity": 1, "request_id": uuid.uuid4().hex})
        tally.label("entry")
        started = time.perf_counter()
        try:
            flash_admission.enter(f"surge-{sale_id}-user-{user}", sale_id, body,  # fresh users per sale
                                  f"127.{user // 62500 + shard_offset}.{user // 250 % 250}.{user % 250 + 1}")
            outcome = "accepted"
        except AppError as error:
            outcome = error.code
        latencies[outcome].append(time.perf_counter() - started)
        tally.file(f"entry:{outcome}", tally.take())
        tally.label(None)
        return outcome

    stop, decided_at = threading.Event(), []
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONSUMERS) as consumers:
        running = [consumers.submit(_consume, tally, stop, decided_at) for _ in range(CONSUMERS)]
        with ThreadPoolExecutor(max_workers=ENTRANTS) as entrants:
            outcomes = Counter(entrants.map(attempt, attempts))
        admitted_by = time.perf_counter()
        stop.set()
        consumer_outcomes = sum((future.result() for future in running), Counter())
    drained_by = max(decided_at, default=admitted_by)
    every = [sample for samples in latencies.values() for sample in samples]
    return {"entries": entries, "users": users, "outcomes": dict(outcomes),
            "consumer_outcomes": dict(consumer_outcomes),
            "admission": {**summarize_ms(every), "entries_per_second": round(entries / (admitted_by - started), 1),
                          "wall_seconds": round(admitted_by - started, 2)},
            "admission_by_outcome": {name: summarize_ms(samples) for name, samples in latencies.items()},
            "drain": {"seconds_from_first_entry": round(drained_by - started, 2),
                      "tail_after_last_entry_seconds": round(max(0.0, drained_by - admitted_by), 2)}}


COST_FIELDS = ("calls", "read_calls", "write_calls", "items_read", "writes", "stock_writes")


def _per_entry(tally: DynamoTally) -> dict[str, dict[str, float]]:
    totals = {label: counts for label, counts in tally.calls.items()}
    entries = [counts for label, counts in totals.items() if label.startswith("entry:")]
    refused = [counts for label, counts in totals.items()
               if label.startswith("entry:") and label != "entry:accepted"]
    totals[REFUSED] = sum(refused, Counter())
    totals[ALL_ENTRIES] = sum(entries, Counter())
    costs = {}
    for label, counts in totals.items():
        n = max(1, counts["entries"])
        costs[label] = {"n": counts["entries"], **{name: round(counts[name] / n, 3) for name in COST_FIELDS}}
    return costs


def _check(sale_id: str, sku_id: str) -> dict[str, Any]:
    from chalicelib.storage import flash_sales, skus
    from chalicelib.storage.orders import OrderRecord

    placed = [order for order in OrderRecord.scan() if order.flash_sale and order.flash_sale["sale_id"] == sale_id]
    sale = flash_sales.get_sale(sale_id, consistent=True)
    sku = skus.get_sku(sku_id, consistent=True)
    per_user = Counter(order.user_id for order in placed)
    return {"orders": len(placed), "most_orders_of_one_user": max(per_user.values(), default=0),
            "stock_left_by_shard": flash_sales.read_stock_shards(sale), "sold_out_flag": sale.sold_out,
            "sku": {"available": sku.available, "allocated": sku.allocated, "reserved": sku.reserved,
                    "sold": sku.sold, "stock_in": sku.stock_in}}


def run(dynamodb_endpoint: str, sqs_endpoint: str, entries: int = N_ENTRIES) -> dict[str, Any]:
    from chalicelib import queues
    from chalicelib.storage import schema

    env.point_at(dynamodb_endpoint, "http://127.0.0.1:9", sqs_endpoint)
    # One connection per thread, as each Lambda instance has its own (botocore keeps 10 by default).
    for model in schema.ALL_MODELS:
        model.Meta.max_pool_connections = ENTRANTS + CONSUMERS + 4
    schema.reset_connections()
    schema.create_all_tables()
    queues.create_all_queues()
    _quiet_logs()
    configs = {}
    for shards in SHARD_CONFIGS:
        tally = DynamoTally()
        tally.attach()
        try:
            sale_id, sku_id = _prepare(shards), f"surge-card-{shards}"
            surge = _surge(sale_id, sku_id, entries, tally)
        finally:
            tally.detach()
        configs[f"shards_{shards}"] = {**surge, "dynamodb_per_entry": _per_entry(tally),
                                       "invariants": _check(sale_id, sku_id)}
    first, last = (configs[f"shards_{n}"] for n in SHARD_CONFIGS)
    ratios = {"admission_p50": _ratio(last["admission"]["p50_ms"], first["admission"]["p50_ms"]),
              "admission_p99": _ratio(last["admission"]["p99_ms"], first["admission"]["p99_ms"]),
              "entries_per_second": _ratio(last["admission"]["entries_per_second"],
                                           first["admission"]["entries_per_second"]),
              "drain_seconds": _ratio(last["drain"]["seconds_from_first_entry"],
                                      first["drain"]["seconds_from_first_entry"])}
    return {"units": UNITS, "per_user_limit": 1, "entrant_threads": ENTRANTS, "consumer_threads": CONSUMERS,
            **configs, f"shards_{SHARD_CONFIGS[-1]}_over_{SHARD_CONFIGS[0]}": ratios}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def _quiet_logs() -> None:
    import logging

    logging.getLogger().setLevel(logging.WARNING)


def markdown(result: dict[str, Any]) -> str:
    one, eight = result["shards_1"], result["shards_8"]
    threads = result["entrant_threads"]
    lines = [f"## Flash-sale surge: {one['entries']:,} entries from {one['users']:,} "
             f"users for {result['units']} units (limit 1), {threads} entrant and "
             f"{result['consumer_threads']} consumer threads", "",
             "| | 1 shard | 8 shards | 8 / 1 |", "|---|---:|---:|---:|"]
    ratios = result["shards_8_over_1"]
    rows = [(f"admission p50 ms ({threads} threads)", one["admission"]["p50_ms"], eight["admission"]["p50_ms"],
             ratios["admission_p50"]),
            (f"admission p99 ms ({threads} threads)", one["admission"]["p99_ms"], eight["admission"]["p99_ms"],
             ratios["admission_p99"]),
            ("entries/s", one["admission"]["entries_per_second"], eight["admission"]["entries_per_second"],
             ratios["entries_per_second"]),
            ("drain s (first entry -> last ticket decided)", one["drain"]["seconds_from_first_entry"],
             eight["drain"]["seconds_from_first_entry"], ratios["drain_seconds"]),
            ("orders (must be 100)", one["invariants"]["orders"], eight["invariants"]["orders"], "")]
    lines += [f"| {name} | {a} | {b} | {c} |" for name, a, b, c in rows]
    lines += ["", f"DynamoDB and latency per entry, by outcome ({threads} entrant threads; p50/p99 ms of that "
              "outcome's entries; read and write calls are requests, items read and written are items):", "",
              "| outcome | shards | n | calls | read calls | write calls | items read | items written "
              "| stock items written | p50 ms | p99 ms |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    labels = sorted(set(one["dynamodb_per_entry"]) | set(eight["dynamodb_per_entry"]), key=_label_order)
    for label in labels:
        for shards, config in (("1", one), ("8", eight)):
            cost = config["dynamodb_per_entry"].get(label)
            if not cost:
                continue
            latency = _latency_of(config, label)
            cells = [cost["n"]] + [cost.get(name, "-") for name in COST_FIELDS]
            cells += [latency.get("p50_ms", "-"), latency.get("p99_ms", "-")]
            lines.append(f"| {label} | {shards} | " + " | ".join(str(cell) for cell in cells) + " |")
    lines += ["", "`consumer` rows are per message handled (won and lost tickets together), and have no latency. "
              f"`{REFUSED}` sums every refusal; `{ALL_ENTRIES}` every entry. The counts of entries and rejects "
              "are written by whichever entry ends an instance's one-second window, so a refused entry's "
              "fraction of a write is that."]
    return "\n".join(lines) + "\n"


def _label_order(label: str) -> tuple[int, str]:
    return ({"entry:accepted": 0, REFUSED: 2, ALL_ENTRIES: 3, "consumer": 4}.get(label, 1), label)


def _latency_of(config: dict[str, Any], label: str) -> dict[str, Any]:
    if label == ALL_ENTRIES:
        return config["admission"]
    if label.startswith("entry:") and label != REFUSED:
        return config["admission_by_outcome"].get(label.split(":", 1)[1], {})
    return {}


def write(result: dict[str, Any]) -> None:
    """Standalone runs: the JSON and the table (`make bench` writes both through bench.report)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "flash_surge.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n",
                                                  encoding="utf-8")
    write_markdown(result)


def write_markdown(result: dict[str, Any]) -> None:
    (RESULTS_DIR / "flash_surge.md").write_text(markdown(result), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flash_surge", description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=N_ENTRIES)
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results as it is")
    args = parser.parse_args(argv)
    if args.entries < 1:
        parser.error("--entries must be at least 1")
    from bench.shop import SqsServer
    from local.dynamodb_local import start_dynamodb

    handle, sqs = start_dynamodb(), SqsServer()
    try:
        result = run(handle.endpoint, sqs.endpoint, args.entries)
    finally:
        sqs.stop()
        handle.stop()
    if not args.no_write:
        write(result)
    print(markdown(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
