"""Table `waybills`: the e-waybill of an order (物流助手), one item per order.

Lifecycle (`status`): `creating` (the pending marker, written before WeChat is asked, with a
conditional put), `created` (WeChat's waybill_id stored), `delivered` (the parcel was signed for),
`failed` (WeChat refused the create: a new create may start again) and `cancelled`. A new create
after `failed` or `cancelled` replaces the item with `seq` + 1 (condition: the status and seq as
read), so each attempt sends WeChat an order_id of its own (`wx_order_id`, the order id, then
`<order_id>.<seq>`): WeChat answers the same waybill for the same order_id, which is what makes
a retried create (or one that crashed after WeChat answered) end with one waybill.

Sparse keys-only indexes, so the sweeps Query the few due items instead of scanning:
- `by_watch` ("watch", watch_at): the anomaly deadline while the shipment is watched (no pickup
  scan by created_at + LOGISTICS_NO_PICKUP_HOURS, then no movement for LOGISTICS_STALL_DAYS after
  the last event); removed on delivery, cancel, or once the shipment's one alert is raised;
- `by_poll` ("poll", poll_at): when to ask WeChat for the path if no push came; moved forward by
  every push or poll, removed on delivery or cancel.
One partition each: fine for a store's parcels (a partition takes ~1,000 writes/s).
Index answers are candidates only: the sweeps read each item again and decide from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.attributes import (BooleanAttribute, MapAttribute, NumberAttribute, UnicodeAttribute,
                                 UTCDateTimeAttribute)
from pynamodb.models import Model

from chalicelib.storage.base import ConditionFailed, KeysOnlyIndex, TableMeta, condition_failure_as, table_name

CREATING, CREATED, DELIVERED, FAILED, CANCELLED = "creating", "created", "delivered", "failed", "cancelled"
RESTARTABLE = (FAILED, CANCELLED)
WATCH, POLL = "watch", "poll"


class ByWatch(KeysOnlyIndex):
    class Meta(KeysOnlyIndex.Meta):
        index_name = "by_watch"

    watch_bucket = UnicodeAttribute(hash_key=True)
    watch_at = UTCDateTimeAttribute(range_key=True)


class ByPoll(KeysOnlyIndex):
    class Meta(KeysOnlyIndex.Meta):
        index_name = "by_poll"

    poll_bucket = UnicodeAttribute(hash_key=True)
    poll_at = UTCDateTimeAttribute(range_key=True)


class WaybillRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("waybills")

    order_id = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute()
    wx_order_id = UnicodeAttribute()  # the order_id WeChat sees for this attempt
    status = UnicodeAttribute()
    delivery_id = UnicodeAttribute()
    delivery_name = UnicodeAttribute()
    biz_id = UnicodeAttribute()
    service_type = NumberAttribute()
    service_name = UnicodeAttribute()
    fingerprint = UnicodeAttribute()  # what the create asked for: a retry must ask the same
    openid = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    waybill_id = UnicodeAttribute(null=True)
    waybill_data = MapAttribute(null=True)  # WeChat's key/value pairs for printing the label
    waybill_at = UTCDateTimeAttribute(null=True)  # when WeChat's answer was stored
    shipped = BooleanAttribute(null=True)  # the order was shipped with this waybill
    errcode = NumberAttribute(null=True)  # WeChat's refusal of the create
    errmsg = UnicodeAttribute(null=True)
    cancelled_at = UTCDateTimeAttribute(null=True)
    picked_up_at = UTCDateTimeAttribute(null=True)
    delivered_at = UTCDateTimeAttribute(null=True)
    last_event_at = UTCDateTimeAttribute(null=True)  # the latest event's own time
    last_action_type = NumberAttribute(null=True)
    last_push_at = UTCDateTimeAttribute(null=True)
    last_poll_at = UTCDateTimeAttribute(null=True)
    anomaly = MapAttribute(null=True)  # {kind, at, deadline}: the shipment's one alert
    watch_bucket = UnicodeAttribute(null=True)
    watch_at = UTCDateTimeAttribute(null=True)
    poll_bucket = UnicodeAttribute(null=True)
    poll_at = UTCDateTimeAttribute(null=True)

    by_watch = ByWatch()
    by_poll = ByPoll()


@dataclass(frozen=True)
class Waybill:
    order_id: str
    seq: int
    wx_order_id: str
    status: str
    delivery_id: str
    delivery_name: str
    biz_id: str
    service_type: int
    service_name: str
    fingerprint: str
    openid: str
    created_at: datetime
    updated_at: datetime
    waybill_id: str | None = None
    waybill_data: dict[str, str] | None = None
    waybill_at: datetime | None = None
    shipped: bool = False
    errcode: int | None = None
    errmsg: str | None = None
    cancelled_at: datetime | None = None
    picked_up_at: datetime | None = None
    delivered_at: datetime | None = None
    last_event_at: datetime | None = None
    last_action_type: int | None = None
    last_push_at: datetime | None = None
    last_poll_at: datetime | None = None
    anomaly: dict[str, Any] | None = None
    watch_at: datetime | None = None
    poll_at: datetime | None = None


def _number(value: Any) -> int | None:
    return None if value is None else int(value)


def from_record(record: WaybillRecord) -> Waybill:
    return Waybill(
        order_id=record.order_id, seq=int(record.seq), wx_order_id=record.wx_order_id, status=record.status,
        delivery_id=record.delivery_id, delivery_name=record.delivery_name, biz_id=record.biz_id,
        service_type=int(record.service_type), service_name=record.service_name, fingerprint=record.fingerprint,
        openid=record.openid, created_at=record.created_at, updated_at=record.updated_at,
        waybill_id=record.waybill_id, waybill_data=record.waybill_data.as_dict() if record.waybill_data else None,
        waybill_at=record.waybill_at, shipped=bool(record.shipped), errcode=_number(record.errcode),
        errmsg=record.errmsg, cancelled_at=record.cancelled_at, picked_up_at=record.picked_up_at,
        delivered_at=record.delivered_at, last_event_at=record.last_event_at,
        last_action_type=_number(record.last_action_type), last_push_at=record.last_push_at,
        last_poll_at=record.last_poll_at, anomaly=record.anomaly.as_dict() if record.anomaly else None,
        watch_at=record.watch_at if record.watch_bucket else None,
        poll_at=record.poll_at if record.poll_bucket else None,
    )


def wx_order_id_for(order_id: str, seq: int) -> str:
    return order_id if seq == 1 else f"{order_id}.{seq}"


def order_id_of(wx_order_id: str) -> str:
    """Our order id from the order_id WeChat knows (`<order_id>` or `<order_id>.<seq>`)."""
    return wx_order_id.split(".", 1)[0]


def get_waybill(order_id: str) -> Waybill | None:
    try:
        return from_record(WaybillRecord.get(order_id, consistent_read=True))
    except WaybillRecord.DoesNotExist:
        return None


def start(order_id: str, *, previous: Waybill | None, now: datetime, **fields: Any) -> Waybill:
    """Write the pending marker (status creating) of a new attempt. Condition: no waybill yet, or
    the one read (`previous`) is still failed/cancelled at the same seq. Raises ConditionFailed."""
    seq = previous.seq + 1 if previous else 1
    record = WaybillRecord(order_id, seq=seq, wx_order_id=wx_order_id_for(order_id, seq), status=CREATING,
                           created_at=now, updated_at=now, **fields)
    if previous is None:
        condition = WaybillRecord.order_id.does_not_exist()
    else:
        condition = WaybillRecord.status.is_in(*RESTARTABLE) & (WaybillRecord.seq == previous.seq)
    with condition_failure_as(ConditionFailed):
        record.save(condition=condition)
    return from_record(record)


def _update(waybill: Waybill, actions: list, condition: Any) -> Waybill:
    """One conditional update of the attempt read (same seq), plus `condition`. Raises ConditionFailed."""
    record = WaybillRecord(waybill.order_id)
    with condition_failure_as(ConditionFailed):
        record.update(actions=actions, condition=(WaybillRecord.seq == waybill.seq) & condition)
    return from_record(record)


def mark_created(waybill: Waybill, waybill_id: str, waybill_data: dict[str, str], now: datetime,
                 watch_at: datetime, poll_at: datetime) -> Waybill:
    """creating -> created with WeChat's waybill; the anomaly watch and the poll start."""
    return _update(waybill, [
        WaybillRecord.status.set(CREATED), WaybillRecord.waybill_id.set(waybill_id),
        WaybillRecord.waybill_data.set(waybill_data) if waybill_data else WaybillRecord.waybill_data.remove(),
        WaybillRecord.waybill_at.set(now),
        WaybillRecord.updated_at.set(now), WaybillRecord.errcode.remove(), WaybillRecord.errmsg.remove(),
        *_watch(watch_at), *_poll(poll_at)], WaybillRecord.status == CREATING)


def mark_failed(waybill: Waybill, errcode: int | None, errmsg: str, now: datetime) -> Waybill:
    """creating -> failed: WeChat refused the create; a new create may start again."""
    code = WaybillRecord.errcode.set(errcode) if errcode is not None else WaybillRecord.errcode.remove()
    return _update(waybill, [WaybillRecord.status.set(FAILED), code, WaybillRecord.errmsg.set(errmsg[:300] or "-"),
                             WaybillRecord.updated_at.set(now)],
                   WaybillRecord.status == CREATING)


def mark_shipped(waybill: Waybill, now: datetime) -> Waybill:
    return _update(waybill, [WaybillRecord.shipped.set(True), WaybillRecord.updated_at.set(now)],
                   WaybillRecord.status.is_in(CREATED, DELIVERED) & (WaybillRecord.waybill_id == waybill.waybill_id))


def mark_cancelled(waybill: Waybill, now: datetime) -> Waybill:
    """created -> cancelled (WeChat cancelled it); nothing is watched or polled any more."""
    return _update(waybill, [WaybillRecord.status.set(CANCELLED), WaybillRecord.cancelled_at.set(now),
                             WaybillRecord.updated_at.set(now), *_unwatch(), *_unpoll()],
                   (WaybillRecord.status == CREATED) & (WaybillRecord.waybill_id == waybill.waybill_id))


def record_progress(waybill: Waybill, now: datetime, *, source: str, sets: dict[str, Any],
                    watch_at: datetime | None, poll_at: datetime | None, delivered: bool) -> Waybill:
    """Apply what new tracking events changed. Condition: the waybill is as read (status, number,
    last event time), so two writers merging at once cannot move it backwards: the loser reads
    again and recomputes. `watch_at`/`poll_at` None remove that key. Raises ConditionFailed."""
    actions = [getattr(WaybillRecord, name).set(value) for name, value in sets.items()]
    actions += [WaybillRecord.updated_at.set(now),
                (WaybillRecord.last_push_at if source == "push" else WaybillRecord.last_poll_at).set(now)]
    if delivered:
        actions.append(WaybillRecord.status.set(DELIVERED))
    actions += _watch(watch_at) if watch_at else _unwatch()
    actions += _poll(poll_at) if poll_at else _unpoll()
    last = WaybillRecord.last_event_at
    condition = (WaybillRecord.status == waybill.status) & (WaybillRecord.waybill_id == waybill.waybill_id) \
        & ((last == waybill.last_event_at) if waybill.last_event_at else last.does_not_exist()) \
        & (WaybillRecord.anomaly.exists() if waybill.anomaly else WaybillRecord.anomaly.does_not_exist())
    return _update(waybill, actions, condition)


def flag_anomaly(waybill: Waybill, anomaly: dict[str, Any], now: datetime) -> Waybill:
    """Set the shipment's one anomaly (and stop watching it). Condition: still created, never
    flagged, and watched with the deadline read: exactly one sweep (of any number racing) wins."""
    assert waybill.watch_at is not None
    return _update(waybill, [WaybillRecord.anomaly.set(anomaly), WaybillRecord.updated_at.set(now), *_unwatch()],
                   (WaybillRecord.status == CREATED) & WaybillRecord.anomaly.does_not_exist()
                   & (WaybillRecord.watch_at == waybill.watch_at) & WaybillRecord.watch_bucket.exists())


def claim_poll(waybill: Waybill, next_poll_at: datetime) -> Waybill:
    """Move a due poll forward before asking WeChat (compare-and-set on poll_at: two sweeps poll once)."""
    assert waybill.poll_at is not None
    return _update(waybill, _poll(next_poll_at), (WaybillRecord.status == CREATED)
                   & (WaybillRecord.poll_at == waybill.poll_at) & WaybillRecord.poll_bucket.exists())


def _watch(at: datetime) -> list:
    return [WaybillRecord.watch_bucket.set(WATCH), WaybillRecord.watch_at.set(at)]


def _unwatch() -> list:
    return [WaybillRecord.watch_bucket.remove(), WaybillRecord.watch_at.remove()]


def _poll(at: datetime) -> list:
    return [WaybillRecord.poll_bucket.set(POLL), WaybillRecord.poll_at.set(at)]


def _unpoll() -> list:
    return [WaybillRecord.poll_bucket.remove(), WaybillRecord.poll_at.remove()]


def due_to_watch(now: datetime, limit: int) -> list[str]:
    """Order ids whose anomaly deadline has passed (index answer: candidates only)."""
    return [record.order_id for record in
            WaybillRecord.by_watch.query(WATCH, WaybillRecord.watch_at <= now, limit=limit)]


def due_to_poll(now: datetime, limit: int) -> list[str]:
    """Order ids whose path is due to be polled (index answer: candidates only)."""
    return [record.order_id for record in
            WaybillRecord.by_poll.query(POLL, WaybillRecord.poll_at <= now, limit=limit)]
