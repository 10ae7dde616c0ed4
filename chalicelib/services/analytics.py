"""The analytics consumer: DynamoDB stream records of `orders` and `events` -> the aggregates.

Called with the records of one Lambda invocation (the `on_dynamodb_record` handlers in
jobs/analytics.py; locally the worker polls the streams and calls the same handlers). Each
record is turned into units (domain/analytics.py) and the units applied exactly once
(storage/analytics.py). Raising makes the stream deliver the batch again; units already
applied are then skipped by their markers, so a crash anywhere in a batch is safe.

A record that cannot be understood (an image missing a field) is logged and skipped rather
than raised: it would otherwise hold back its shard for the stream's 24 hours.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

from chalicelib import clock
from chalicelib.domain import analytics as rules
from chalicelib.log import get_logger
from chalicelib.storage import analytics as store
from chalicelib.storage.events import EventRecord
from chalicelib.storage.orders import OrderRecord

log = get_logger(__name__)


def table_of(event_source_arn: str) -> str:
    """`arn:aws:dynamodb:region:account:table/<name>/stream/<label>` -> `<name>`."""
    resource = event_source_arn.split(":", 5)[-1]
    parts = resource.split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "table" else ""


def derive(records: Iterable[dict[str, Any]]) -> rules.Derived:
    """The units of stream records (Lambda's event shape), skipping what counts nothing."""
    derived = rules.Derived()
    for record in records:
        try:
            derived.extend(_derive_one(record))
        except (KeyError, ValueError, TypeError) as error:
            log.error("stream record skipped", event_id=record.get("eventID"), error=type(error).__name__,
                      detail=str(error)[:200])
    return derived


def _derive_one(record: dict[str, Any]) -> rules.Derived:
    table = table_of(record.get("eventSourceARN", ""))
    change = record["dynamodb"]
    at = datetime.fromtimestamp(float(change.get("ApproximateCreationDateTime") or clock.now().timestamp()),
                                timezone.utc)
    if table == OrderRecord.Meta.table_name:
        if record.get("eventName") == "REMOVE":
            return rules.Derived()
        return rules.order_units(store.plain(change.get("OldImage")), store.plain(change.get("NewImage")), at)
    if table == EventRecord.Meta.table_name and record.get("eventName") == "INSERT":
        return rules.event_units(store.plain(change["NewImage"]))
    return rules.Derived()


def consume(records: list[dict[str, Any]]) -> dict[str, int]:
    """Apply the records' business events exactly once; what was done, for the log."""
    derived = derive(records)
    applied, skipped = store.apply(derived.units, derived.paid_days, clock.now())
    return {"records": len(records), "units": len(derived.units), "applied": applied, "skipped": skipped}
