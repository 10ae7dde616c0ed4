"""Table `events`: the mini-program's tracking events, one item each, append-only, 90 days (TTL).

Keyed by (user, the client's event id): a batch is put as TransactWriteItems of Puts, each only
if absent, so a retried batch stores (and, downstream, counts) nothing twice; the items already
there are named by the transaction's cancellation reasons and the rest is put again. The table's
stream (NEW_IMAGE) feeds the analytics consumer, which counts each INSERT once
(services/analytics.py); an event is never changed, so the stream carries nothing else but
deletions by TTL, which count nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError
from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.storage.base import TableMeta, table_name

# What one transaction carries here: moto (the tests' DynamoDB) takes 25; DynamoDB takes 100.
CHUNK = 25
MAX_ROUNDS = CHUNK + 1  # per chunk: each round drops at least one event already stored
_serialize = TypeSerializer().serialize


class EventRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("events")
        stream_view_type = "NEW_IMAGE"

    user_id = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)  # the client's id of the event
    kind = UnicodeAttribute()  # page_view, product_view, add_to_cart, share
    at_ms = NumberAttribute()  # when it counts (epoch ms): the client's time if plausible
    client_at_ms = NumberAttribute()
    received_at_ms = NumberAttribute()
    source = UnicodeAttribute()  # the attribution key: source tag, scene_<n> or direct
    scene = NumberAttribute(null=True)
    page = UnicodeAttribute(null=True)
    product_id = UnicodeAttribute(null=True)
    sku_id = UnicodeAttribute(null=True)
    quantity = NumberAttribute(null=True)
    expires_at = TTLAttribute()


@dataclass(frozen=True)
class Event:
    user_id: str
    event_id: str
    kind: str
    at: datetime
    client_at: datetime
    source: str
    scene: int | None = None
    page: str | None = None
    product_id: str | None = None
    sku_id: str | None = None
    quantity: int | None = None


class Busy(Exception):
    """The batch could not be stored now (contention); nothing half-counted: retry it."""


def _item(event: Event, received_at: datetime, retention: timedelta) -> dict[str, Any]:
    values = {"user_id": event.user_id, "event_id": event.event_id, "kind": event.kind,
              "at_ms": _ms(event.at), "client_at_ms": _ms(event.client_at), "received_at_ms": _ms(received_at),
              "source": event.source, "scene": event.scene, "page": event.page, "product_id": event.product_id,
              "sku_id": event.sku_id, "quantity": event.quantity,
              "expires_at": int((received_at + retention).timestamp())}
    return {name: _serialize(value) for name, value in values.items() if value is not None}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def put_new(events: list[Event], received_at: datetime, retention: timedelta) -> int:
    """Store the events not stored yet (ids unique within `events`); how many were new."""
    stored = 0
    for start in range(0, len(events), CHUNK):
        stored += _put_chunk([_item(event, received_at, retention) for event in events[start:start + CHUNK]])
    return stored


def _put_chunk(items: list[dict[str, Any]]) -> int:
    for _ in range(MAX_ROUNDS):
        if not items:
            return 0
        try:
            _client().transact_write_items(TransactItems=[{"Put": {
                "TableName": EventRecord.Meta.table_name, "Item": item,
                "ConditionExpression": "attribute_not_exists(user_id)"}} for item in items])
            return len(items)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            codes = [reason.get("Code") for reason in error.response.get("CancellationReasons") or []]
            if "ConditionalCheckFailed" not in codes:
                raise Busy() from error
            items = [item for item, code in zip(items, codes) if code != "ConditionalCheckFailed"]
    raise Busy()


def get(user_id: str, event_id: str) -> dict[str, Any] | None:
    try:
        record = EventRecord.get(user_id, event_id, consistent_read=True)
    except EventRecord.DoesNotExist:
        return None
    return {name: getattr(record, name) for name in ("kind", "at_ms", "source", "product_id", "quantity")}


def _client():
    return EventRecord._get_connection().connection.client


def erase(user_id: str, max_items: int) -> int:
    """PIPL deletion: the user's stored events (up to `max_items`; a retried deletion takes the
    rest); how many were deleted. What they counted stays in the anonymous daily aggregates."""
    deleted = 0
    for record in EventRecord.query(user_id, consistent_read=True, attributes_to_get=["user_id", "event_id"],
                                    page_size=100):
        if deleted >= max_items:
            break
        record.delete()
        deleted += 1
    return deleted
