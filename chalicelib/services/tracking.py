"""Tracking: WeChat's path pushes (verified), our polls of the path, the views of both.

Every event is stored once by its natural key (storage/tracking_events.py), whether a push or a
poll brought it, so a redelivered push or a poll overlapping a push changes nothing. The waybill
then records what the new events changed (last event, pickup, delivery) with a conditional
update, moves its anomaly deadline and its next poll, and the buyer hears of the key events
(picked up, out for delivery, delivered) by a subscribe message, once per waybill and kind.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable

from pydantic import ValidationError

from chalicelib import clock, logistics_settings
from chalicelib.errors import PayloadTooLarge, Unauthorized, ValidationFailed
from chalicelib.log import get_logger
from chalicelib.services import notifications
from chalicelib.services.order_reads import get_order, get_user_order
from chalicelib.storage import orders, tracking_events, waybills
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.tracking_events import TrackingEvent
from chalicelib.storage.waybills import Waybill
from chalicelib.wechat.logistics import PathItem, push_signature_ok

if TYPE_CHECKING:
    from chalicelib.schemas.logistics import PushQuery
    from chalicelib.storage.orders import Order

log = get_logger(__name__)

PICKED_UP, OUT_FOR_DELIVERY, DELIVERED = 100001, 300002, 300003
STAGES = {100001: "picked_up", 100002: "pickup_failed", 100003: "courier_assigned", 200001: "in_transit",
          300002: "out_for_delivery", 300003: "delivered", 300004: "delivery_failed", 400001: "cancelled",
          400002: "held"}
KEY_EVENTS = frozenset({PICKED_UP, OUT_FOR_DELIVERY, DELIVERED})
NOTIFY_KIND = "delivery_update"
PUSH_MAX_SKEW_SECONDS = 600  # a push signed longer ago (or ahead) than this is refused
MAX_EVENTS_PER_MERGE = 200
MAX_PUSH_BYTES = 1024 * 1024
RECORD_ATTEMPTS = 3
PATH_EVENT = "add_express_path"
_ORDER_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")  # the shape of our order ids (api/http.py PATH_ID)


def stage(action_type: int) -> str:
    return STAGES.get(action_type, "other")


def means_picked_up(action_type: int) -> bool:
    """A pickup scan, or any transit or delivery scan (which cannot happen before one)."""
    return action_type == PICKED_UP or 200000 <= action_type < 400000


# ---------------------------------------------------------------------------- the push

def verify_push(query: PushQuery) -> None:
    """WeChat's message-push signature over the query (and a fresh timestamp); 401 otherwise."""
    token = logistics_settings.push_token()
    if token is None:
        log.error("a logistics push arrived but LOGISTICS_PUSH_TOKEN is not set")
        raise Unauthorized("Pushes are not configured here", code="push_not_configured")
    signature, timestamp, nonce = query.signature or "", query.timestamp or "", query.nonce or ""
    if not (signature and timestamp.isdigit() and nonce) or not push_signature_ok(token, timestamp, nonce, signature):
        log.warning("a logistics push failed verification")
        raise Unauthorized("The push signature does not verify", code="invalid_signature")
    if abs(clock.epoch_seconds() - int(timestamp)) > PUSH_MAX_SKEW_SECONDS:
        raise Unauthorized("The push is signed with a stale timestamp", code="stale_signature")


def receive_path_push(query: PushQuery, raw_body: bytes) -> str:
    """A verified path push (logistics.onPathUpdate): store its events; returns what happened.
    Pushes of other events, or of a waybill we do not know, are acknowledged and ignored."""
    verify_push(query)
    push = _parse_push(raw_body)
    if push.MsgType != "event" or push.Event.lower() != PATH_EVENT:
        return "ignored"
    if not push.OrderId or not push.WayBillId:
        raise ValidationFailed(details=[{"field": "OrderId", "message": "OrderId and WayBillId are required"}])
    waybill = _waybill_for(push.OrderId, push.WayBillId)
    if waybill is None:
        log.warning("a path push for a waybill we do not have", waybill_id=push.WayBillId[:64])
        return "unknown_waybill"
    items = [PathItem(action.ActionTime, action.ActionType, action.ActionMsg) for action in push.Actions]
    _, new = merge_events(waybill, items, "push")
    return "applied" if new else "duplicate"


def _parse_push(raw_body: bytes):
    from chalicelib.schemas.logistics import PathPush

    if len(raw_body) > MAX_PUSH_BYTES:
        raise PayloadTooLarge()
    try:
        data = json.loads(raw_body or b"")
        return PathPush.model_validate(data)
    except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError is a ValueError)
        raise ValidationFailed("The push is not JSON", code="invalid_json",
                               details=[{"field": "body", "message": "not JSON"}]) from None
    except ValidationError as error:
        raise ValidationFailed(details=[
            {"field": ".".join(str(part) for part in issue["loc"]) or "body", "message": issue["msg"]}
            for issue in error.errors(include_url=False)]) from None


def _waybill_for(wx_order_id: str, waybill_id: str) -> Waybill | None:
    order_id = waybills.order_id_of(wx_order_id)
    if not _ORDER_ID.match(order_id):
        return None
    waybill = waybills.get_waybill(order_id)
    if waybill is None or waybill.wx_order_id != wx_order_id or waybill.waybill_id != waybill_id \
            or waybill.status not in (waybills.CREATED, waybills.DELIVERED):
        return None
    return waybill


# ---------------------------------------------------------------------------- merging

def merge_events(waybill: Waybill, items: Iterable[PathItem], source: str) -> tuple[Waybill, list[TrackingEvent]]:
    """Store the events not stored before, then record on the waybill what they changed."""
    now = clock.now()
    new = []
    for item in list(items)[:MAX_EVENTS_PER_MERGE]:
        event = tracking_events.put_event(waybill.order_id, waybill.waybill_id, clock.from_epoch(item.action_time),
                                          item.action_type, item.action_msg, source, now)
        if event is not None:
            new.append(event)
    waybill = _record(waybill, new, source, now)
    if new:
        log.info("tracking events stored", order_id=waybill.order_id, source=source, count=len(new))
        _notify_key_events(waybill, new, now)
    return waybill, new


def _record(waybill: Waybill, new: list[TrackingEvent], source: str, now: datetime) -> Waybill:
    """Conditional on the waybill as read; on losing a race, read again and recompute (bounded)."""
    for _ in range(RECORD_ATTEMPTS):
        if waybill.status not in (waybills.CREATED, waybills.DELIVERED):
            return waybill  # cancelled meanwhile: the events are kept, the waybill is left alone
        sets, delivered = _changes(waybill, new)
        watch_at, poll_at = _next_deadlines(waybill, sets, delivered, now)
        try:
            return waybills.record_progress(waybill, now, source=source, sets=sets, watch_at=watch_at,
                                            poll_at=poll_at, delivered=delivered)
        except ConditionFailed:
            current = waybills.get_waybill(waybill.order_id)
            if current is None or current.waybill_id != waybill.waybill_id:
                return waybill
            waybill = current
    log.warning("the waybill kept changing; its summary waits for the next event", order_id=waybill.order_id)
    return waybill


def _changes(waybill: Waybill, new: list[TrackingEvent]) -> tuple[dict[str, Any], bool]:
    sets: dict[str, Any] = {}
    if new:
        latest = max(new, key=lambda event: (event.action_time, event.action_type))
        if waybill.last_event_at is None or latest.action_time > waybill.last_event_at:
            sets.update(last_event_at=latest.action_time, last_action_type=latest.action_type)
    pickups = [event.action_time for event in new if means_picked_up(event.action_type)]
    if pickups and waybill.picked_up_at is None:
        sets["picked_up_at"] = min(pickups)
    deliveries = [event.action_time for event in new if event.action_type == DELIVERED]
    if deliveries and waybill.delivered_at is None:
        sets["delivered_at"] = min(deliveries)
    delivered = waybill.status == waybills.CREATED and bool(deliveries or waybill.delivered_at)
    return sets, delivered


def _next_deadlines(waybill: Waybill, sets: dict[str, Any], delivered: bool,
                    now: datetime) -> tuple[datetime | None, datetime | None]:
    """(anomaly deadline, next poll): none once delivered; no deadline once the one alert is raised."""
    if delivered or waybill.status == waybills.DELIVERED:
        return None, None
    poll_at = now + logistics_settings.poll_after()
    if waybill.anomaly is not None:
        return None, poll_at
    picked_up_at = sets.get("picked_up_at") or waybill.picked_up_at
    if picked_up_at is None:
        return (waybill.waybill_at or waybill.created_at) + logistics_settings.no_pickup_after(), poll_at
    last = max(moment for moment in (sets.get("last_event_at"), waybill.last_event_at, picked_up_at) if moment)
    return last + logistics_settings.stall_after(), poll_at


def _notify_key_events(waybill: Waybill, new: list[TrackingEvent], now: datetime) -> None:
    """A subscribe message per key event kind, once per waybill (the message key says so)."""
    kinds = sorted({event.action_type for event in new if event.action_type in KEY_EVENTS})
    if not kinds:
        return
    order = orders.get_order(waybill.order_id)
    if order is None or order.status in ("cancelled", "refunded"):
        return
    for action_type in kinds:
        outcome = notifications.notify_order_event(order, NOTIFY_KIND, now, ref=f"{waybill.waybill_id}-{action_type}")
        log.info("delivery update for the buyer", order_id=order.order_id, stage=stage(action_type), outcome=outcome)


# ---------------------------------------------------------------------------- views

def user_tracking(user_id: str, order_id: str) -> tuple[Order, Waybill | None, list[TrackingEvent]]:
    """The buyer's own order with its waybill and events (someone else's order: 404)."""
    return _tracking(get_user_order(user_id, order_id))


def admin_tracking(order_id: str) -> tuple[Order, Waybill | None, list[TrackingEvent]]:
    return _tracking(get_order(order_id))


def _tracking(order: Order) -> tuple[Order, Waybill | None, list[TrackingEvent]]:
    waybill = waybills.get_waybill(order.order_id)
    if waybill is None or waybill.waybill_id is None:
        return order, waybill, []
    return order, waybill, tracking_events.list_events(order.order_id, waybill.waybill_id)
