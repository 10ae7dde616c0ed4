"""Tracking events from the mini-program (counted downstream, docs/analytics.md)."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
EventBatchBody, EventsAccepted = lazy_names(
    "chalicelib.schemas.events", "EventBatchBody", "EventsAccepted")

events = lazy_module("chalicelib.services.events")

api = ApiBlueprint(__name__, tag="analytics")


@api.route("POST", "/v1/events", body=EventBatchBody, response=EventsAccepted, errors=(400, 401, 403, 429),
           summary="Record up to 100 tracking events (page_view, product_view, add_to_cart, share); a resent "
                   "event_id is stored and counted once; 429 beyond a burst of 10 batches or 1 a second")
def record_events(request: ApiRequest) -> EventsAccepted:
    return events.record_events(request.user_id, request.body)
