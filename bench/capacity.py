"""Meter DynamoDB calls and consumed capacity through botocore event hooks (reusable).

    meter = CapacityMeter()                    # asks for ReturnConsumedCapacity=INDEXES
    meter.attach_models(schema.ALL_MODELS)     # PynamoDB models; attach_client(c) for boto3
    meter.reset()
    ... requests ...
    usage = meter.snapshot()                   # per operation: calls, errors, RCU, WCU, time
    usage.per_request(n)                       # the same divided by n, JSON-friendly
    with meter.paused(): ...                   # setup between measured requests: not counted
    with meter.resumed(): ...                  # inside paused(): counted again (another thread's request)
    meter.detach()                             # or use the meter as a context manager

Where the hooks go: PynamoDB keeps one botocore client per model connection
(`Model._get_connection().connection.client`), shared by every thread; only the botocore
*session* is per thread, and it is used once, to build that client. So hooks on each model's
client see every call from every thread. A client built later (after
`schema.reset_connections()`, or when PynamoDB rebuilds a client that lost its credentials)
has no hooks: call attach_models again. To catch that, the meter also counts PynamoDB's own
`pre_dynamodb_send` signal (when blinker is installed): `Usage.unmetered` is the number of
PynamoDB calls that went through a client without the hooks, and should be 0.

Capacity: `before-parameter-build` sets ReturnConsumedCapacity on each data-plane operation
(PynamoDB already asks for TOTAL; INDEXES adds per-table and per-index figures) and
`after-call` adds up `ConsumedCapacity` (a dict, or a list for batch and transaction calls).
DynamoDB and DynamoDB Local report one `CapacityUnits` total; Read/WriteCapacityUnits are used
when present, otherwise units count as read or write by operation. A failed conditional write
is still billed, but its error response carries no ConsumedCapacity: it shows in `errors` only
(bench.theoretical estimates it).

Per operation *and* table (`by_operation_table`): calls that touched the table, the items they
addressed there (keys, puts, deletes, transaction actions; for Query and Scan the items scanned)
and the units the answer reported for it, with `index_units`, the part of those units spent on
its secondary indexes (the INDEXES breakdown: a write to a table with GSIs also writes each
index). TransactWriteItems and BatchGetItem answer one ConsumedCapacity entry per table, so this
is where a transaction's cost per table shows.

`CallCounter` counts calls of another service (SQS) the same way, by operation.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

try:  # PynamoDB's signals need blinker; without it the unmetered check is skipped
    from pynamodb.signals import pre_dynamodb_send, signals_available
except ImportError:  # pragma: no cover
    pre_dynamodb_send, signals_available = None, False

READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
# Operations that accept ReturnConsumedCapacity (PartiQL ones can read or write: "other" units).
CAPACITY_OPERATIONS = READ_OPERATIONS | WRITE_OPERATIONS | frozenset(
    {"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"})
MAX_RECORDS = 100_000  # bounded memory in long runs; later calls are counted but not recorded

_STARTED = "bench_capacity_started"
_OPERATION = "bench_capacity_operation"
_PARAMS = "bench_capacity_params"


@dataclass
class OperationUsage:
    calls: int = 0
    errors: Counter = field(default_factory=Counter)  # error code -> count
    retries: int = 0
    unreported: int = 0  # successful data-plane calls whose answer had no ConsumedCapacity
    read_units: float = 0.0
    write_units: float = 0.0
    other_units: float = 0.0
    seconds: float = 0.0  # from parameter building to the parsed answer, retries included


@dataclass(frozen=True)
class CallRecord:
    """One call's request parameters, kept for bench.theoretical (item sizes)."""
    operation: str
    params: dict[str, Any]
    error: str | None


@dataclass
class Usage:
    operations: dict[str, OperationUsage]
    tables: dict[str, dict[str, float]]  # table -> {"read": units, "write": units, "other": units}
    records: list[CallRecord]
    pynamodb_dispatches: int | None  # None when blinker is missing
    metered_pynamodb_calls: int
    # operation -> table -> {"calls", "items", "read", "write", "other"} (see the module docstring)
    operation_tables: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    @property
    def unmetered(self) -> int | None:
        if self.pynamodb_dispatches is None:
            return None
        return max(0, self.pynamodb_dispatches - self.metered_pynamodb_calls)

    def total(self, attribute: str) -> float:
        return sum(getattr(op, attribute) for op in self.operations.values())

    def per_request(self, requests: int) -> dict[str, Any]:
        """Calls, units and DynamoDB time per request, by operation and in total."""
        by_operation = {name: {"calls": round(op.calls / requests, 3),
                               "read_units": round(op.read_units / requests, 3),
                               "write_units": round(op.write_units / requests, 3),
                               "errors": round(sum(op.errors.values()) / requests, 3),
                               "error_codes": dict(op.errors)}
                        for name, op in sorted(self.operations.items())}
        return {
            "requests": requests,
            "calls": round(self.total("calls") / requests, 3),
            "read_units": round(self.total("read_units") / requests, 3),
            "write_units": round(self.total("write_units") / requests, 3),
            "other_units": round(self.total("other_units") / requests, 3),
            "errors": round(sum(sum(op.errors.values()) for op in self.operations.values()) / requests, 3),
            "retries": round(self.total("retries") / requests, 3),
            "unreported_calls": int(self.total("unreported")),
            "dynamodb_ms": round(self.total("seconds") * 1000 / requests, 3),
            "by_operation": by_operation,
            "by_table": {table: {kind: round(units / requests, 3) for kind, units in kinds.items()}
                         for table, kinds in sorted(self.tables.items())},
            "by_operation_table": {
                operation: {table: {"calls": round(f["calls"] / requests, 3),
                                    "items": round(f["items"] / requests, 3),
                                    "read_units": round(f["read"] / requests, 3),
                                    "write_units": round(f["write"] / requests, 3),
                                    "other_units": round(f["other"] / requests, 3),
                                    "index_units": round(f["index"] / requests, 3)}
                            for table, f in sorted(tables.items())}
                for operation, tables in sorted(self.operation_tables.items())},
            "unmetered_pynamodb_calls": self.unmetered,
        }


def index_units(consumed: Any) -> list[tuple[str, float]]:
    """[(table, units on its secondary indexes)] from a ConsumedCapacity dict or list (INDEXES)."""
    entries = consumed if isinstance(consumed, list) else [consumed] if isinstance(consumed, dict) else []
    out = []
    for entry in entries:
        indexes = [*(entry.get("GlobalSecondaryIndexes") or {}).values(),
                   *(entry.get("LocalSecondaryIndexes") or {}).values()]
        if indexes:
            out.append((entry.get("TableName", "?"), sum(float(i.get("CapacityUnits", 0.0)) for i in indexes)))
    return out


def items_by_table(operation: str, params: dict, parsed: dict | None = None) -> dict[str, int]:
    """{table: items the call addressed there}: keys, puts, deletes, transaction actions; for
    Query and Scan the items scanned (from the answer). Tables of a call come from here."""
    if operation in ("TransactWriteItems", "TransactGetItems"):
        found: Counter = Counter()
        for entry in params.get("TransactItems", []):
            for spec in entry.values():  # one action per entry: Put | Update | Delete | ConditionCheck | Get
                found[spec.get("TableName", "?")] += 1
        return dict(found)
    if operation == "BatchGetItem":
        return {table: len(spec.get("Keys", [])) for table, spec in params.get("RequestItems", {}).items()}
    if operation == "BatchWriteItem":
        return {table: len(requests) for table, requests in params.get("RequestItems", {}).items()}
    if "TableName" not in params:
        return {}
    if operation in ("Query", "Scan"):
        parsed = parsed or {}
        return {params["TableName"]: int(parsed.get("ScannedCount", parsed.get("Count", 0)) or 0)}
    return {params["TableName"]: 1}


def split_units(operation: str, consumed: Any) -> list[tuple[str, str, float]]:
    """[(table, "read"|"write"|"other", units)] from a ConsumedCapacity dict or list."""
    entries = consumed if isinstance(consumed, list) else [consumed] if isinstance(consumed, dict) else []
    kind = "read" if operation in READ_OPERATIONS else "write" if operation in WRITE_OPERATIONS else "other"
    out = []
    for entry in entries:
        table = entry.get("TableName", "?")
        read, write = entry.get("ReadCapacityUnits"), entry.get("WriteCapacityUnits")
        if read is not None or write is not None:  # an explicit split beats guessing by operation
            out += [(table, "read", float(read or 0.0)), (table, "write", float(write or 0.0))]
        else:
            out.append((table, kind, float(entry.get("CapacityUnits", 0.0))))
    return out


class _Pausable:
    """The switch both meters share: calls made while paused are not counted."""
    _paused = False

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Calls made inside are not counted (setup between measured requests). Not nested, and
        meant for one thread: a call from another thread meanwhile would not be counted either."""
        self._paused = True
        try:
            yield
        finally:
            self._paused = False

    @contextlib.contextmanager
    def resumed(self) -> Iterator[None]:
        """Inside paused(), count again for a while: e.g. a request that another thread handles
        while the pausing thread waits for it (bench.pay_notify meters only the app's handling
        of a notify, not the simulator's work around it). Restores the previous state."""
        was_paused = self._paused
        self._paused = False
        try:
            yield
        finally:
            self._paused = was_paused


class CapacityMeter(_Pausable):
    """Hooks on botocore DynamoDB clients that count calls and add up consumed capacity."""

    def __init__(self, return_consumed_capacity: str | None = "INDEXES", keep_records: bool = True):
        # None leaves ReturnConsumedCapacity as the caller set it (PynamoDB: TOTAL).
        self.mode = return_consumed_capacity
        self.keep_records = keep_records
        self._lock = threading.Lock()
        self._paused = False
        self._attached: dict[int, Any] = {}  # id(events) -> (events, source)
        self._signal_connected = False
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._operations: dict[str, OperationUsage] = defaultdict(OperationUsage)
            self._tables: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
            self._records: list[CallRecord] = []
            self._operation_tables: dict[str, dict[str, dict[str, float]]] = defaultdict(
                lambda: defaultdict(lambda: dict.fromkeys(("calls", "items", "read", "write", "other", "index"), 0.0)))
            self._dispatches = 0
            self._metered_pynamodb = 0

    # -------------------------------------------------------------------------- attaching

    def attach_client(self, client: Any, source: str = "boto3") -> None:
        """Hook one botocore/boto3 DynamoDB client (idempotent per client)."""
        events = client.meta.events
        if id(events) in self._attached:
            return
        prefix = f"bench-capacity-{id(self)}"
        events.register("before-parameter-build.dynamodb", self._make_before(), unique_id=f"{prefix}-before")
        events.register("after-call.dynamodb", self._make_after(source), unique_id=f"{prefix}-after")
        events.register("after-call-error.dynamodb", self._make_after_error(source), unique_id=f"{prefix}-error")
        self._attached[id(events)] = events

    def attach_models(self, models: Iterable[Any]) -> None:
        """Hook the client of each PynamoDB model (building it if needed), and count
        PynamoDB's dispatch signal so calls through a client without hooks show up."""
        for model in models:
            self.attach_client(model._get_connection().connection.client, source="pynamodb")
        if signals_available and not self._signal_connected:
            pre_dynamodb_send.connect(self._on_dispatch, weak=False)
            self._signal_connected = True

    def detach(self) -> None:
        prefix = f"bench-capacity-{id(self)}"
        for events in self._attached.values():
            events.unregister("before-parameter-build.dynamodb", unique_id=f"{prefix}-before")
            events.unregister("after-call.dynamodb", unique_id=f"{prefix}-after")
            events.unregister("after-call-error.dynamodb", unique_id=f"{prefix}-error")
        self._attached.clear()
        if self._signal_connected:
            pre_dynamodb_send.disconnect(self._on_dispatch)
            self._signal_connected = False

    def __enter__(self) -> "CapacityMeter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.detach()

    # ----------------------------------------------------------------------------- hooks

    def _make_before(self):
        def before(params: dict, model: Any, context: dict, **_: Any) -> None:
            if self.mode and model.name in CAPACITY_OPERATIONS:
                params["ReturnConsumedCapacity"] = self.mode
            context[_OPERATION] = model.name
            context[_PARAMS] = dict(params)
            context[_STARTED] = time.perf_counter()
        return before

    def _make_after(self, source: str):
        def after(http_response: Any, parsed: dict, model: Any, context: dict, **_: Any) -> None:
            error = None
            if http_response.status_code >= 300:
                error = (parsed.get("Error") or {}).get("Code") or f"HTTP {http_response.status_code}"
            self._record(model.name, parsed, context, source, error)
        return after

    def _make_after_error(self, source: str):
        # A transport failure (timeout, refused connection): no answer, only the exception.
        def after_error(exception: BaseException, context: dict, **_: Any) -> None:
            self._record(context.get(_OPERATION, "?"), {}, context, source, type(exception).__name__)
        return after_error

    def _on_dispatch(self, _sender: Any, **_: Any) -> None:
        if self._paused:
            return
        with self._lock:
            self._dispatches += 1

    def _record(self, operation: str, parsed: dict, context: dict, source: str, error: str | None) -> None:
        if self._paused:
            return
        elapsed = time.perf_counter() - context.get(_STARTED, time.perf_counter())
        consumed = parsed.get("ConsumedCapacity")
        touched = items_by_table(operation, context.get(_PARAMS, {}), parsed)
        with self._lock:
            usage = self._operations[operation]
            usage.calls += 1
            usage.seconds += elapsed
            usage.retries += int((parsed.get("ResponseMetadata") or {}).get("RetryAttempts", 0) or 0)
            if error:
                usage.errors[error] += 1
            elif consumed is None and operation in CAPACITY_OPERATIONS:
                usage.unreported += 1
            by_table = self._operation_tables[operation]
            for table, items in touched.items():
                by_table[table]["calls"] += 1
                by_table[table]["items"] += items
            for table, kind, units in split_units(operation, consumed):
                setattr(usage, f"{kind}_units", getattr(usage, f"{kind}_units") + units)
                self._tables[table][kind] += units
                by_table[table][kind] += units
            for table, units in index_units(consumed):
                by_table[table]["index"] += units
            if source == "pynamodb":
                self._metered_pynamodb += 1
            if self.keep_records and len(self._records) < MAX_RECORDS:
                self._records.append(CallRecord(operation, context.get(_PARAMS, {}), error))

    # --------------------------------------------------------------------------- results

    def snapshot(self) -> Usage:
        """A copy of what was counted since the last reset()."""
        with self._lock:
            operations = {name: OperationUsage(op.calls, Counter(op.errors), op.retries, op.unreported,
                                               op.read_units, op.write_units, op.other_units, op.seconds)
                          for name, op in self._operations.items()}
            tables = {table: dict(kinds) for table, kinds in self._tables.items()}
            operation_tables = {operation: {table: dict(figures) for table, figures in by_table.items()}
                                for operation, by_table in self._operation_tables.items()}
            return Usage(operations, tables, list(self._records),
                         self._dispatches if self._signal_connected else None, self._metered_pynamodb,
                         operation_tables)


class CallCounter(_Pausable):
    """Counts calls of one AWS service (e.g. "sqs") through botocore hooks, by operation.

        counter = CallCounter("sqs"); counter.attach_client(queues._client())
        counter.reset(); ...; counter.snapshot()  # {"SendMessage": 100}; errors as "Op (Code)"
    """

    def __init__(self, service: str):
        self.service = service
        self._lock = threading.Lock()
        self._attached: dict[int, Any] = {}
        self._paused = False
        self._calls: Counter = Counter()

    def attach_client(self, client: Any) -> None:
        events = client.meta.events
        if id(events) in self._attached:
            return
        events.register(f"after-call.{self.service}", self._after, unique_id=f"bench-calls-{id(self)}-after")
        events.register(f"after-call-error.{self.service}", self._after_error,
                        unique_id=f"bench-calls-{id(self)}-error")
        self._attached[id(events)] = events

    def _after(self, http_response: Any, parsed: dict, model: Any, **_: Any) -> None:
        name = model.name
        if http_response.status_code >= 300:
            name += f" ({(parsed.get('Error') or {}).get('Code') or http_response.status_code})"
        self._count(name)

    def _after_error(self, exception: BaseException, **_: Any) -> None:
        self._count(f"? ({type(exception).__name__})")

    def _count(self, name: str) -> None:
        if not self._paused:
            with self._lock:
                self._calls[name] += 1

    def reset(self) -> None:
        with self._lock:
            self._calls = Counter()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._calls.items()))

    def detach(self) -> None:
        for events in self._attached.values():
            events.unregister(f"after-call.{self.service}", unique_id=f"bench-calls-{id(self)}-after")
            events.unregister(f"after-call-error.{self.service}", unique_id=f"bench-calls-{id(self)}-error")
        self._attached.clear()
