"""Stream-shaped records (Lambda's DynamoDB event) for feeding the analytics consumer on moto,
whose DynamoDB keeps no stream the app could read."""
from __future__ import annotations

import dataclasses
import itertools
from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.storage.events import EventRecord
from chalicelib.storage.orders import Order, OrderRecord, to_record

_sequence = itertools.count(1)


def _arn(table: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2024-05-01T00:00:00.000"


def record(table: str, name: str, old: dict | None, new: dict | None, at: datetime | None = None) -> dict[str, Any]:
    change: dict[str, Any] = {"ApproximateCreationDateTime": (at or clock.now()).timestamp(),
                              "SequenceNumber": str(next(_sequence)).zfill(21), "SizeBytes": 100,
                              "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if old is not None:
        change["OldImage"] = old
    if new is not None:
        change["NewImage"] = new
    return {"eventID": f"ev{next(_sequence)}", "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1", "dynamodb": change, "eventSourceARN": _arn(table)}


def image(order: Order) -> dict[str, Any]:
    """The order's item as the stream shows it (to_record leaves out what later changes add)."""
    item = to_record(order)
    item.paid_at, item.prepay, item.cancelled_at = order.paid_at, order.prepay, order.cancelled_at
    item.cancel_reason, item.refunded_fen = order.cancel_reason, order.refunded_fen or None
    return item.serialize()


def order_change(before: Order | None, after: Order, at: datetime | None = None) -> dict[str, Any]:
    return record(OrderRecord.Meta.table_name, "INSERT" if before is None else "MODIFY",
                  None if before is None else image(before), image(after), at)


def evolve(order: Order, **changes: Any) -> Order:
    return dataclasses.replace(order, **changes)


def tracking_event(user_id: str, event_id: str, kind: str, at: datetime, source: str = "direct",
                   product_id: str | None = None, quantity: int | None = None) -> dict[str, Any]:
    item = EventRecord(user_id, event_id, kind=kind, at_ms=int(at.timestamp() * 1000),
                       client_at_ms=int(at.timestamp() * 1000), received_at_ms=int(at.timestamp() * 1000),
                       source=source, product_id=product_id, quantity=quantity, expires_at=at)
    return record(EventRecord.Meta.table_name, "INSERT", None, item.serialize(), at)
