"""Tables `analytics_daily`, `analytics_applied` and `analytics_customers`: the aggregates the
reports read, the markers that make counting exactly-once, and each customer's order summary.

`analytics_daily`: one item per (day, scope), scope `total`, `source#<key>` or
`product#<id>`; counters are top-level numbers moved only by `ADD` (which creates the item and
the attribute), so writers never conflict on a read value. A report reads one day's items with
one Query (or the totals of a range with one BatchGetItem): O(days), never O(events).

`analytics_applied`: one marker per unit applied (domain/analytics.py `Unit.key`), put with
`attribute_not_exists` in the same TransactWriteItems as the unit's ADDs: a unit whose marker
exists was applied before and the whole transaction is refused, so a redelivered stream record
(or a consumer crashing between two transactions and running the batch again) adds nothing
twice. Markers expire after MARKER_DAYS (TTL), far beyond the stream's 24-hour retention.

Units are packed: many units share a transaction (their ADDs to the same item merged) up to
PACK_ITEMS items, so a batch of one user's page views costs about one marker write per event.
A transaction refused because some markers exist is retried without those units. The visitor
units (`u:...`, most of them applied already by an earlier event that day) are looked up first
with one consistent BatchGetItem and dropped when their marker is there.

`analytics_customers`: per user who paid, `orders_paid`, `orders_refunded`, `monetary_fen`,
`refund_fen`, `paid_months` (a string set), moved by the units; `first_paid_day` /
`last_paid_day` by idempotent min/max updates (conditional on the stored value: safe to
repeat, in any order); and the nightly scores (storage/rfm.py).
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.models import Model

from chalicelib.domain.analytics import PaidDay, Unit
from chalicelib.storage.base import KeysOnlyIndex, TableMeta, table_name
from chalicelib.storage.batch_get import batch_get_raw

PACK_ITEMS = 25  # moto's transaction limit; a single larger unit (a 40-line order) goes alone (<= 100)
MARKER_DAYS = 7
MAX_ROUNDS = 6  # per pack: each refused round drops the units whose markers exist
CONFLICT_RETRIES = 4
VISITOR_PREFIX = "u:"
_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


class AnalyticsDayRecord(Model):
    """Counters are dynamic top-level attributes: read raw (`_plain`)."""
    class Meta(TableMeta):
        table_name = table_name("analytics_daily")

    day = UnicodeAttribute(hash_key=True)  # ISO date, Asia/Shanghai
    scope = UnicodeAttribute(range_key=True)  # total | source#<key> | product#<id> | rfm | repurchase


class AnalyticsMarkerRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("analytics_applied")

    key = UnicodeAttribute(hash_key=True)
    at_ms = NumberAttribute()
    expires_at = TTLAttribute()


class BySegment(KeysOnlyIndex):
    """Sparse: customers carry `segment` once scored; coupon targeting lists one segment."""
    class Meta(KeysOnlyIndex.Meta):
        index_name = "by_segment"

    segment = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)


class CustomerRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("analytics_customers")

    user_id = UnicodeAttribute(hash_key=True)
    orders_paid = NumberAttribute(null=True)
    orders_refunded = NumberAttribute(null=True)
    monetary_fen = NumberAttribute(null=True)
    refund_fen = NumberAttribute(null=True)
    paid_months = UnicodeSetAttribute(null=True)  # YYYY-MM
    first_paid_day = UnicodeAttribute(null=True)
    last_paid_day = UnicodeAttribute(null=True)
    # The nightly scores (storage/rfm.py).
    r = NumberAttribute(null=True)
    f = NumberAttribute(null=True)
    m = NumberAttribute(null=True)
    segment = UnicodeAttribute(null=True)
    stage = UnicodeAttribute(null=True)
    scored_on = UnicodeAttribute(null=True)

    by_segment = BySegment()


class Busy(Exception):
    """Transactions kept colliding (hot counters); nothing half-applied: deliver the batch again."""


# --- applying units ---------------------------------------------------------------------------------

def apply(units: list[Unit], paid_days: list[PaidDay], now: datetime) -> tuple[int, int]:
    """Apply each unit exactly once (and the idempotent paid-day facts); (applied, skipped)."""
    units = _unique(units)
    known = _existing_markers([unit.key for unit in units if unit.key.startswith(VISITOR_PREFIX)])
    pending = [unit for unit in units if unit.key not in known]
    applied = 0
    for pack in _packs(pending):
        applied += _apply_pack(pack, now)
    for fact in paid_days:
        _paid_day(fact)
    return applied, len(units) - applied


def _unique(units: list[Unit]) -> list[Unit]:
    seen: dict[str, Unit] = {}
    for unit in units:
        seen.setdefault(unit.key, unit)
    return list(seen.values())


def _existing_markers(keys: list[str]) -> set[str]:
    if not keys:
        return set()
    table = AnalyticsMarkerRecord.Meta.table_name
    found = batch_get_raw([(table, {"key": {"S": key}}) for key in keys], _connection(), consistent=True)
    return {item["key"]["S"] for item in found.get(table, [])}


def _packs(units: list[Unit]) -> list[list[Unit]]:
    packs: list[list[Unit]] = []
    current: list[Unit] = []
    targets: set[tuple] = set()
    for unit in units:
        mine = _targets(unit)
        if current and len(current) + 1 + len(targets | mine) > PACK_ITEMS:
            packs.append(current)
            current, targets = [], set()
        current.append(unit)
        targets |= mine
    if current:
        packs.append(current)
    return packs


def _targets(unit: Unit) -> set[tuple]:
    found: set[tuple] = {("day", day, scope) for day, scope in unit.counts}
    if unit.customer:
        found.add(("customer", unit.customer[0]))
    return found


def _apply_pack(pack: list[Unit], now: datetime) -> int:
    for _ in range(MAX_ROUNDS):
        if not pack:
            return 0
        items = _transaction(pack, now)
        codes = _transact(items)
        if codes is None:
            return len(pack)
        refused = {items[index]["Put"]["Item"]["key"]["S"] for index, code in enumerate(codes)
                   if code == "ConditionalCheckFailed" and "Put" in items[index]}
        pack = [unit for unit in pack if unit.key not in refused]
    if len(pack) == 1:
        return 0
    return sum(_apply_pack([unit], now) for unit in pack)  # still refused: one at a time, each its own fate


def _transaction(pack: list[Unit], now: datetime) -> list[dict[str, Any]]:
    expires = int((now + timedelta(days=MARKER_DAYS)).timestamp())
    items: list[dict[str, Any]] = [{"Put": {
        "TableName": AnalyticsMarkerRecord.Meta.table_name,
        "Item": {"key": {"S": unit.key}, "at_ms": _serialize(int(now.timestamp() * 1000)),
                 "expires_at": _serialize(expires)},
        "ConditionExpression": "attribute_not_exists(#k)", "ExpressionAttributeNames": {"#k": "key"}}}
        for unit in pack]
    days: dict[tuple[str, str], dict[str, int]] = {}
    customers: dict[str, tuple[dict[str, int], set[str]]] = {}
    for unit in pack:
        for target, counts in unit.counts.items():
            merged = days.setdefault(target, {})
            for name, value in counts.items():
                merged[name] = merged.get(name, 0) + value
        if unit.customer:
            user_id, counts, months = unit.customer
            merged, month_set = customers.setdefault(user_id, ({}, set()))
            for name, value in counts.items():
                merged[name] = merged.get(name, 0) + value
            month_set.update(months)
    for (day, scope), counts in sorted(days.items()):
        if not counts:
            continue
        items.append({"Update": _add(AnalyticsDayRecord.Meta.table_name, {"day": {"S": day}, "scope": {"S": scope}},
                                     counts, {})})
    for user_id, (counts, months) in sorted(customers.items()):
        items.append({"Update": _add(CustomerRecord.Meta.table_name, {"user_id": {"S": user_id}}, counts,
                                     {"paid_months": months} if months else {})})
    return items


def _add(table: str, key: dict[str, Any], counts: dict[str, int], sets: dict[str, set[str]]) -> dict[str, Any]:
    names, values, parts = {}, {}, []
    for index, (name, value) in enumerate(sorted({**counts, **sets}.items())):
        names[f"#a{index}"] = name
        values[f":v{index}"] = _serialize(value)
        parts.append(f"#a{index} :v{index}")
    return {"TableName": table, "Key": key, "UpdateExpression": "ADD " + ", ".join(parts),
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}


def _transact(items: list[dict[str, Any]]) -> list[str | None] | None:
    """None when written; else the cancellation codes, per item, of a refusal by conditions.
    Collisions with other transactions are retried with a backoff; Busy if they persist."""
    for attempt in range(CONFLICT_RETRIES + 1):
        try:
            _client().transact_write_items(TransactItems=items)
            return None
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code not in ("TransactionCanceledException", "TransactionConflictException"):
                raise
            codes = [reason.get("Code") for reason in error.response.get("CancellationReasons") or []]
            if "ConditionalCheckFailed" in codes:
                return codes
            if attempt < CONFLICT_RETRIES:
                time.sleep(0.02 * 2 ** attempt)
    raise Busy()


def _paid_day(fact: PaidDay) -> None:
    """first_paid_day = min, last_paid_day = max: each a conditional SET, a no-op when it would
    not move (safe to repeat after a crash, in any order)."""
    key = {"user_id": {"S": fact.user_id}}
    for name, comparison in (("first_paid_day", ">"), ("last_paid_day", "<")):
        try:
            _client().update_item(TableName=CustomerRecord.Meta.table_name, Key=key,
                                  UpdateExpression=f"SET {name} = :d",
                                  ConditionExpression=f"attribute_not_exists({name}) OR {name} {comparison} :d",
                                  ExpressionAttributeValues={":d": {"S": fact.day}})
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise


# --- stream images -----------------------------------------------------------------------------------

def plain(image: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stream image (DynamoDB JSON) as plain values; whole numbers as int."""
    if not image:
        return None
    return {name: _plain(_deserialize(value)) for name, value in image.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, set):
        return {_plain(item) for item in value}
    return value


# --- reading ---------------------------------------------------------------------------------------

def totals(days: Iterable[str]) -> dict[str, dict[str, int]]:
    """The `total` item of each day that has one, by day (one BatchGetItem per 100 days)."""
    table = AnalyticsDayRecord.Meta.table_name
    keys = [(table, {"day": {"S": day}, "scope": {"S": "total"}}) for day in days]
    found = batch_get_raw(keys, _connection()) if keys else {}
    return {item["day"]["S"]: _counts(item) for item in found.get(table, [])}


def day_items(day: str, prefix: str, max_items: int = 10000) -> dict[str, dict[str, int]]:
    """The day's items whose scope starts with `prefix`, by scope (one Query, paged, bounded)."""
    result: dict[str, dict[str, int]] = {}
    start: dict[str, Any] | None = None
    while len(result) < max_items:
        request = {"TableName": AnalyticsDayRecord.Meta.table_name,
                   "KeyConditionExpression": "#d = :d AND begins_with(#s, :p)",
                   "ExpressionAttributeNames": {"#d": "day", "#s": "scope"},
                   "ExpressionAttributeValues": {":d": {"S": day}, ":p": {"S": prefix}}}
        if start:
            request["ExclusiveStartKey"] = start
        answer = _client().query(**request)
        for item in answer.get("Items", []):
            result[item["scope"]["S"]] = _counts(item)
        start = answer.get("LastEvaluatedKey")
        if not start:
            break
    return result


def get_document(day: str, scope: str) -> dict[str, Any] | None:
    """A stored snapshot (the nightly RFM/repurchase results), as plain values."""
    answer = _client().get_item(TableName=AnalyticsDayRecord.Meta.table_name,
                                Key={"day": {"S": day}, "scope": {"S": scope}})
    return plain(answer.get("Item"))


def latest_document(days: list[str], scope: str) -> dict[str, Any] | None:
    """The snapshot of the latest of `days` that has one (one BatchGetItem per 100 days)."""
    table = AnalyticsDayRecord.Meta.table_name
    found = batch_get_raw([(table, {"day": {"S": day}, "scope": {"S": scope}}) for day in days], _connection())
    items = sorted(found.get(table, []), key=lambda item: item["day"]["S"])
    return plain(items[-1]) if items else None


def put_document(day: str, scope: str, document: dict[str, Any]) -> None:
    item = {"day": day, "scope": scope, **document}
    _client().put_item(TableName=AnalyticsDayRecord.Meta.table_name,
                       Item={name: _serialize(value) for name, value in item.items()})


def _counts(item: dict[str, Any]) -> dict[str, int]:
    return {name: int(_deserialize(value)) for name, value in item.items() if "N" in value}


def _connection():
    return AnalyticsDayRecord._get_connection().connection


def _client():
    return _connection().client
