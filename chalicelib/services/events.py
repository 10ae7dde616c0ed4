"""Tracking events from the mini-program: rate-limited per user, stored once per client event id.

Counting happens downstream, from the `events` table's stream (services/analytics.py): the
request only stores, so a burst of tracking never waits on the hot daily counters.
"""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from chalicelib import clock
from chalicelib.domain import analytics as rules
from chalicelib.errors import RateLimited, ServiceUnavailable
from chalicelib.log import get_logger
from chalicelib.storage import events as store
from chalicelib.storage import rate_limits

if TYPE_CHECKING:
    from chalicelib.schemas.events import EventBatchBody, EventsAccepted

log = get_logger(__name__)


def record_events(user_id: str, batch: "EventBatchBody") -> "EventsAccepted":
    from chalicelib.schemas.events import EventsAccepted

    now = clock.now()
    if not rate_limits.take_token(rules.EVENTS_PER_USER, user_id, now):
        raise RateLimited("Too many event batches; send fewer, larger batches", code="events_rate_limited",
                          retry_after_seconds=rules.EVENTS_PER_USER.retry_after_seconds)
    events = [store.Event(user_id=user_id, event_id=event.event_id, kind=event.type,
                          at=rules.counted_at(event.at, now), client_at=event.at,
                          source=rules.source_key(event.source, event.scene), scene=event.scene, page=event.page,
                          product_id=getattr(event, "product_id", None), sku_id=getattr(event, "sku_id", None),
                          quantity=getattr(event, "quantity", None))
              for event in batch.events]
    try:
        stored = store.put_new(events, now, timedelta(days=rules.EVENT_RETENTION_DAYS))
    except store.Busy:
        raise ServiceUnavailable("Busy; send the batch again shortly") from None
    return EventsAccepted(received=len(events), stored=stored, duplicates=len(events) - stored)
