"""Table `tracking_events`: a waybill's trace, one item per event, stored once.

Key: (`shipment_key` = "<order_id>#<waybill_id>", `event_key` = "<action_time, 10 digits>#
<action_type>#<digest of the message>"). The event key is the event's natural key, the same
whether the event came by WeChat's push or by our poll of its path, and every write is a put
with attribute_not_exists: a redelivered push, or a poll overlapping a push, stores each event
once, and the put's success tells the one writer that stored it (who reports key events to the
buyer). Sorted by the key, a shipment's events are in time order.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name

MAX_EVENTS_READ = 500


class TrackingEventRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("tracking_events")

    shipment_key = UnicodeAttribute(hash_key=True)
    event_key = UnicodeAttribute(range_key=True)
    order_id = UnicodeAttribute()
    waybill_id = UnicodeAttribute()
    action_time = UTCDateTimeAttribute()
    action_type = NumberAttribute()
    action_msg = UnicodeAttribute()
    source = UnicodeAttribute()  # push | poll: whichever stored it first
    received_at = UTCDateTimeAttribute()


@dataclass(frozen=True)
class TrackingEvent:
    order_id: str
    waybill_id: str
    event_key: str
    action_time: datetime
    action_type: int
    action_msg: str
    source: str
    received_at: datetime


def shipment_key(order_id: str, waybill_id: str) -> str:
    return f"{order_id}#{waybill_id}"


def event_key(action_time: datetime, action_type: int, action_msg: str) -> str:
    digest = hashlib.sha256(action_msg.encode()).hexdigest()[:16]
    return f"{int(action_time.timestamp()):010d}#{action_type}#{digest}"


def put_event(order_id: str, waybill_id: str, action_time: datetime, action_type: int, action_msg: str,
              source: str, now: datetime) -> TrackingEvent | None:
    """Store the event unless stored before; returns it when this call stored it, else None."""
    key = event_key(action_time, action_type, action_msg)
    record = TrackingEventRecord(shipment_key(order_id, waybill_id), key, order_id=order_id, waybill_id=waybill_id,
                                 action_time=action_time, action_type=action_type, action_msg=action_msg or "-",
                                 source=source, received_at=now)
    try:
        with condition_failure_as(ConditionFailed):
            record.save(condition=TrackingEventRecord.event_key.does_not_exist())
    except ConditionFailed:
        return None
    return _to_event(record)


def list_events(order_id: str, waybill_id: str) -> list[TrackingEvent]:
    """The shipment's events, newest first (at most MAX_EVENTS_READ)."""
    results = TrackingEventRecord.query(shipment_key(order_id, waybill_id), scan_index_forward=False,
                                        limit=MAX_EVENTS_READ, consistent_read=True)
    return [_to_event(record) for record in results]


def _to_event(record: TrackingEventRecord) -> TrackingEvent:
    return TrackingEvent(order_id=record.order_id, waybill_id=record.waybill_id, event_key=record.event_key,
                         action_time=record.action_time, action_type=int(record.action_type),
                         action_msg=record.action_msg, source=record.source, received_at=record.received_at)
