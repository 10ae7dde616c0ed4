"""Capacity units from item sizes by DynamoDB's billing rules (on-demand, standard table class).

A cross-check of what the engine reports, and a stand-in where it reports nothing (moto, or a
failed conditional write, which is billed but answers without ConsumedCapacity).

Item size ("Item sizes and formats" in the DynamoDB guide): attribute-name UTF-8 bytes plus
value bytes. S: UTF-8 length; B: byte length; N: about 1 byte per 2 significant digits + 1;
BOOL/NULL: 1; L/M: 3 + 1 per element + elements; sets: sum of members.
Units: a write costs ceil(size / 1 KB) per item, a read ceil(size / 4 KB), halved when
eventually consistent; transactions double both; a miss still costs the minimum. Writes are
billed on the larger of the before and after images: we size the item as stored after the
run, which is the larger image for items that only grow (true of login's items); an item
deleted by the end of the run (an ordered cart line) counts the minimum, right for small items.
Query and Scan depend on what they return, so they are counted as not estimated.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from bench.capacity import CallRecord

FetchItem = Callable[[str, dict], "dict | None"]  # (table, key) -> stored item or None


@dataclass(frozen=True)
class Touch:
    kind: str  # "read" | "write"
    table: str
    key: dict | None = None   # to look the stored item up
    item: dict | None = None  # the item as sent (PutItem): no lookup needed
    consistent: bool = True
    transactional: bool = False


def value_size(value: dict) -> int:
    (kind, data), = value.items()
    if kind == "S":
        return len(data.encode("utf-8"))
    if kind == "B":
        return len(data)
    if kind == "N":
        digits = data.lstrip("+-").replace(".", "").strip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in data)
    if kind == "M":
        return 3 + sum(1 + len(name.encode("utf-8")) + value_size(element) for name, element in data.items())
    if kind == "SS":
        return sum(len(member.encode("utf-8")) for member in data)
    if kind == "NS":
        return sum(value_size({"N": member}) for member in data)
    if kind == "BS":
        return sum(len(member) for member in data)
    raise ValueError(f"unknown attribute type {kind!r}")


def item_size(item: dict) -> int:
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def touches(operation: str, params: dict) -> list[Touch] | None:
    """The items one call reads or writes, or None when that depends on the answer."""
    table, consistent = params.get("TableName", "?"), bool(params.get("ConsistentRead"))
    if operation == "GetItem":
        return [Touch("read", table, key=params.get("Key"), consistent=consistent)]
    if operation in ("UpdateItem", "DeleteItem"):
        return [Touch("write", table, key=params.get("Key"))]
    if operation == "PutItem":
        return [Touch("write", table, item=params.get("Item"))]
    if operation == "BatchGetItem":
        return [Touch("read", name, key=key, consistent=bool(spec.get("ConsistentRead")))
                for name, spec in params.get("RequestItems", {}).items() for key in spec.get("Keys", [])]
    if operation == "BatchWriteItem":
        return [Touch("write", name, key=(r.get("DeleteRequest") or {}).get("Key"),
                      item=(r.get("PutRequest") or {}).get("Item"))
                for name, requests in params.get("RequestItems", {}).items() for r in requests]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        return [_transact_touch(entry) for entry in params.get("TransactItems", [])]
    return None


def _transact_touch(entry: dict) -> Touch:
    (action, spec), = entry.items()  # Put | Update | Delete | ConditionCheck | Get
    kind = "read" if action == "Get" else "write"  # a ConditionCheck is billed as a write
    return Touch(kind, spec.get("TableName", "?"), key=spec.get("Key"), item=spec.get("Item"),
                 consistent=True, transactional=True)


def units(touch: Touch, size: int) -> float:
    if touch.kind == "write":
        cost = float(max(1, math.ceil(size / 1024)))
    else:
        cost = max(1, math.ceil(size / 4096)) * (1.0 if touch.consistent else 0.5)
    return cost * (2 if touch.transactional else 1)


def estimate(records: Iterable[CallRecord], fetch_item: FetchItem) -> dict[str, Any]:
    """Theoretical read and write units of the recorded calls, by operation."""
    sizes: dict[str, int] = {}  # stored item sizes, looked up once per key
    by_operation: dict[str, dict[str, float]] = {}
    by_operation_table: dict[str, dict[str, dict[str, float]]] = {}
    not_estimated = 0
    for record in records:
        found = touches(record.operation, record.params)
        if found is None:
            not_estimated += record.operation not in _CONTROL_PLANE
            continue
        totals = by_operation.setdefault(record.operation, {"read_units": 0.0, "write_units": 0.0})
        for touch in found:
            size = item_size(touch.item) if touch.item is not None else _stored_size(touch, fetch_item, sizes)
            cost = units(touch, size)
            totals[f"{touch.kind}_units"] += cost
            per_table = by_operation_table.setdefault(record.operation, {}).setdefault(
                touch.table, {"read_units": 0.0, "write_units": 0.0})
            per_table[f"{touch.kind}_units"] += cost
    return {"by_operation": by_operation, "by_operation_table": by_operation_table,
            "not_estimated_calls": not_estimated,
            "read_units": sum(t["read_units"] for t in by_operation.values()),
            "write_units": sum(t["write_units"] for t in by_operation.values())}


_CONTROL_PLANE = frozenset({"DescribeTable", "ListTables", "CreateTable", "DeleteTable", "UpdateTable",
                            "UpdateTimeToLive", "DescribeTimeToLive"})


def _stored_size(touch: Touch, fetch_item: FetchItem, cache: dict[str, int]) -> int:
    cache_key = json.dumps([touch.table, touch.key], sort_keys=True)
    if cache_key not in cache:
        stored = fetch_item(touch.table, touch.key) if touch.key else None
        cache[cache_key] = item_size(stored) if stored else 0
    return cache[cache_key]
