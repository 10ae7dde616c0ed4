"""Store promotions (activities): the merchant's full-reduction tiers, and the running ones.

`running_full_reductions` is what the checkout prices with, on every preview: a warm container
keeps the active, not-ended activities it read for CACHE_SECONDS (one Scan of the small table
when the cache is cold) and picks the running ones at each call, so an activity starts and
ends on the second, while a merchant's edit (a new activity, a pause, changed tiers) shows in
checkout within CACHE_SECONDS (at once in the container that made it). The public list
`GET /v1/activities` reads the same cache.
"""
from __future__ import annotations

import threading
import uuid
from datetime import datetime
from time import monotonic  # a name of this module, so tests can move the cache's clock

from chalicelib import clock
from chalicelib.domain import cursors
from chalicelib.domain.coupons import FullReductionActivity
from chalicelib.errors import BadRequest, Conflict, NotFound, ValidationFailed
from chalicelib.log import get_logger
from chalicelib.schemas.activities import (KIND_FIELDS, ActivityOut, AdminActivityOut, CreateActivityBody, TierOut,
                                           UpdateActivityBody, kind_fields_problem)
from chalicelib.schemas.coupons import ScopeOut
from chalicelib.settings import get_settings
from chalicelib.storage import activities
from chalicelib.storage.activities import Activity
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.coupons import scope_dict, scope_from

log = get_logger(__name__)

CACHE_SECONDS = 30.0
_cache_lock = threading.Lock()
_cache: tuple[float, list[Activity]] | None = None


def running_full_reductions(now: datetime | None = None) -> tuple[FullReductionActivity, ...]:
    """The full-reduction activities running at `now` (default: the clock's), for pricing."""
    now = now or clock.now()
    return tuple(activity.as_full_reduction() for activity in _running(now) if activity.kind == "full_reduction")


def forget_running() -> None:
    """Drop this container's cache (after an edit here; tests start from a cold container)."""
    global _cache
    with _cache_lock:
        _cache = None


def _running(now: datetime) -> list[Activity]:
    global _cache
    with _cache_lock:
        cached = _cache
    if cached is None or monotonic() - cached[0] >= CACHE_SECONDS:
        # Read at the clock's now, not the caller's: the cache serves every caller for a while.
        cached = (monotonic(), activities.active_not_ended(clock.now()))
        with _cache_lock:
            _cache = cached
    return [activity for activity in cached[1] if activity.running(now)]


def list_running() -> list[ActivityOut]:
    now = clock.now()
    return [activity_out(activity) for activity in sorted(_running(now), key=lambda a: (a.ends_at, a.activity_id))]


DEFAULT_NAMES = {"full_reduction": "满减", "group_buy": "拼团", "bargain": "砍价"}


def create_activity(body: CreateActivityBody, activity_id: str | None = None) -> AdminActivityOut:
    """A new activity (a fixed `activity_id` is for the demo seed: ConditionFailed if it exists)."""
    now = clock.now()
    _check_future_end(body.ends_at, now)
    offer_terms = {name: getattr(body, name) for name in activities.OFFER_FIELDS if getattr(body, name) is not None}
    _check_offer_sku(body.kind, offer_terms)
    activity = Activity(activity_id=activity_id or f"act-{uuid.uuid4().hex[:16]}", kind=body.kind,
                        name=body.name or DEFAULT_NAMES[body.kind],
                        tiers=tuple((tier.threshold_fen, tier.off_fen) for tier in body.tiers or ()),
                        scope=scope_from(body.scope.model_dump() if body.scope else {}), starts_at=body.starts_at,
                        ends_at=body.ends_at, status=body.status, created_at=now, updated_at=now, **offer_terms)
    activities.create_activity(activity)
    forget_running()
    log.info("activity created", activity_id=activity.activity_id, kind=activity.kind)
    return admin_out(activity, now)


def _check_offer_sku(kind: str, terms: dict) -> None:
    """A group-buy or bargain sells an existing SKU; a bargain's floor is below the SKU's price."""
    if kind == "full_reduction":
        return
    from chalicelib.storage import catalog_batch

    sku = catalog_batch.get_sellable_skus([terms["sku_id"]]).get(terms["sku_id"])
    if sku is None:
        raise NotFound("No such SKU", code="sku_not_found", details=[{"sku_id": terms["sku_id"]}])
    if kind == "bargain" and terms.get("floor_price_fen", 0) >= sku.price_fen:
        raise ValidationFailed(details=[{"field": "floor_price_fen", "message": f"must be below the SKU's price "
                                                                                 f"({sku.price_fen})"}])


def update_activity(activity_id: str, body: UpdateActivityBody) -> AdminActivityOut:
    current = _activity(activity_id)
    problem = kind_fields_problem(current.kind, set(body.model_fields_set) | _required_of(current.kind))
    if problem or "sku_id" in body.model_fields_set:
        raise ValidationFailed(details=[{"field": "kind", "message": problem or "sku_id cannot change: create "
                                                                                "another activity"}])
    changes = body.model_dump(exclude_unset=True, exclude={"scope", "tiers"})
    if body.tiers is not None:
        changes["tiers"] = tuple((tier.threshold_fen, tier.off_fen) for tier in body.tiers)
    if body.scope is not None:
        changes["scope"] = scope_from(body.scope.model_dump())
    now = clock.now()
    if not changes:
        return admin_out(current, now)
    starts, ends = changes.get("starts_at", current.starts_at), changes.get("ends_at", current.ends_at)
    if ends <= starts:
        raise ValidationFailed(details=[{"field": "ends_at", "message": "must be after starts_at"}])
    if "ends_at" in changes:
        _check_future_end(ends, now)
    try:
        updated = activities.update_activity(activity_id, changes, now)
    except ConditionFailed:
        raise NotFound("No such activity", code="activity_not_found") from None
    forget_running()
    log.info("activity changed", activity_id=activity_id, fields=sorted(changes))
    return admin_out(updated, now)


def _check_future_end(ends_at: datetime, now: datetime) -> None:
    if ends_at <= now:
        raise ValidationFailed(details=[{"field": "ends_at", "message": "must be in the future"}])


def list_activities(limit: int, cursor: str | None) -> tuple[list[AdminActivityOut], str | None]:
    secret, now = get_settings().auth_token_secret, clock.now()
    page, last_key = activities.list_activities(limit, cursors.decode_cursor(cursor, secret, "activities"))
    return [admin_out(activity, now) for activity in page], cursors.encode_cursor(last_key, secret, "activities")


def _activity(activity_id: str) -> Activity:
    activity = activities.get_activity(activity_id, consistent=True)
    if activity is None:
        raise NotFound("No such activity", code="activity_not_found")
    return activity


def _required_of(kind: str) -> set[str]:
    return set(KIND_FIELDS[kind][0])


def running_offer(activity_id: str, kind: str, sku_id: str, now: datetime) -> Activity:
    """The running group-buy or bargain activity selling `sku_id` (consistent read): 404
    activity_not_found when there is none of this kind, 409 activity_not_running when it is
    paused, not started or ended, 400 sku_not_in_activity when it sells another SKU."""
    activity = activities.get_activity(activity_id, consistent=True)
    if activity is None or activity.kind != kind:
        raise NotFound("No such activity", code="activity_not_found")
    if sku_id != activity.sku_id:
        raise BadRequest("This SKU is not the activity's", code="sku_not_in_activity",
                         details=[{"field": "sku_id", "message": f"the activity sells {activity.sku_id}"}])
    if not activity.running(now):
        raise Conflict("The activity is not running", code="activity_not_running",
                       details=[{"starts_at": clock.to_iso(activity.starts_at), "ends_at": clock.to_iso(activity.ends_at),
                                 "status": activity.status}])
    return activity


def activity_out(activity: Activity) -> ActivityOut:
    offer = {name: getattr(activity, name) for name in activities.OFFER_FIELDS}
    if activity.kind != "bargain":
        offer["new_users_only"] = None
    if activity.kind == "full_reduction":
        return ActivityOut(activity_id=activity.activity_id, kind=activity.kind, name=activity.name,
                           tiers=[TierOut(threshold_fen=threshold, off_fen=off) for threshold, off in activity.tiers],
                           scope=ScopeOut(**scope_dict(activity.scope)), starts_at=clock.to_iso(activity.starts_at),
                           ends_at=clock.to_iso(activity.ends_at))
    return ActivityOut(activity_id=activity.activity_id, kind=activity.kind, name=activity.name,
                       starts_at=clock.to_iso(activity.starts_at), ends_at=clock.to_iso(activity.ends_at), **offer)


def admin_out(activity: Activity, now: datetime) -> AdminActivityOut:
    return AdminActivityOut(**activity_out(activity).model_dump(), status=activity.status,
                            running=activity.running(now), created_at=clock.to_iso(activity.created_at),
                            updated_at=clock.to_iso(activity.updated_at))
