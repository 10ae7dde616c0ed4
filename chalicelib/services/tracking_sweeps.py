"""The logistics sweeps: poll the path of waybills no push reached for a while, and raise one
merchant alert per shipment that stalls (no pickup scan LOGISTICS_NO_PICKUP_HOURS after the
waybill, or no movement for LOGISTICS_STALL_DAYS after its last event).

Both find their candidates by a Query of a sparse index (never a scan), read each waybill again
and decide from it, and change it with a conditional write on what they read, so sweeps that
overlap (or a push arriving meanwhile) poll once and alert once.
"""
from __future__ import annotations

from typing import Callable

from chalicelib import clock, logistics_settings
from chalicelib.errors import AppError
from chalicelib.log import get_logger
from chalicelib.services import tracking
from chalicelib.services.access_token import call_with_access_token
from chalicelib.services.waybills import client
from chalicelib.storage import alerts, waybills
from chalicelib.storage.base import ConditionFailed
from chalicelib.wechat.http import WeChatApiError, WeChatUnavailable

log = get_logger(__name__)

ALERT_KIND = "shipment_anomaly"
NO_PICKUP, STALLED = "no_pickup", "stalled"


# ---------------------------------------------------------------------------- polling

def poll_if_due(order_id: str) -> str:
    """Ask WeChat for the waybill's path if its poll is due, and merge what it answers."""
    waybill = waybills.get_waybill(order_id)
    if waybill is None or waybill.status != waybills.CREATED or waybill.poll_at is None:
        return "not_polled"
    now = clock.now()
    if now < waybill.poll_at:
        return "not_due"
    try:
        waybill = waybills.claim_poll(waybill, now + logistics_settings.poll_after())
    except ConditionFailed:
        return "raced"
    try:
        items = call_with_access_token(lambda token: client().get_path(
            token, waybill.wx_order_id, waybill.openid, waybill.delivery_id, waybill.waybill_id))
    except (WeChatApiError, WeChatUnavailable, AppError) as error:
        log.warning("could not poll a waybill's path; next poll later", order_id=order_id,
                    error=type(error).__name__, errcode=getattr(error, "errcode", None))
        return "failed"
    _, new = tracking.merge_events(waybill, items, "poll")
    return "new_events" if new else "no_news"


def sweep_polls(limit: int = 50) -> dict[str, int]:
    return _sweep(waybills.due_to_poll(clock.now(), limit), poll_if_due)


# ---------------------------------------------------------------------------- anomalies

def check_anomaly(order_id: str) -> str:
    """Raise the shipment's one anomaly alert if its deadline has passed; returns what happened."""
    waybill = waybills.get_waybill(order_id)
    if waybill is None or waybill.status != waybills.CREATED or waybill.anomaly or waybill.watch_at is None:
        return "not_watched"
    now = clock.now()
    if now < waybill.watch_at:
        return "not_due"
    kind = NO_PICKUP if waybill.picked_up_at is None else STALLED
    since = waybill.last_event_at if kind == STALLED else (waybill.waybill_at or waybill.created_at)
    anomaly = {"kind": kind, "at": clock.to_iso(now), "deadline": clock.to_iso(waybill.watch_at),
               "since": clock.to_iso(since or waybill.created_at)}
    try:
        waybills.flag_anomaly(waybill, anomaly, now)
    except ConditionFailed:  # moved by an event, or flagged by another sweep: that one decides
        return "raced"
    try:
        alerts.record_alert(ALERT_KIND, now, detail={
            **anomaly, "order_id": waybill.order_id, "waybill_id": waybill.waybill_id or "",
            "delivery_id": waybill.delivery_id, "last_action_type": waybill.last_action_type or 0})
    except Exception:  # noqa: BLE001 - the anomaly stays on the waybill (admin tracking view)
        log.exception("shipment anomaly flagged but its alert could not be written", order_id=order_id)
        return "flagged_without_alert"
    log.warning("shipment anomaly", order_id=order_id, kind=kind, waybill_id=waybill.waybill_id)
    return kind


def sweep_anomalies(limit: int = 100) -> dict[str, int]:
    return _sweep(waybills.due_to_watch(clock.now(), limit), check_anomaly)


def _sweep(order_ids: list[str], handle: Callable[[str], str]) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    for order_id in order_ids:
        try:
            outcome = handle(order_id)
        except Exception:  # noqa: BLE001 - one waybill must not stop the sweep
            log.exception("logistics sweep failed for one waybill", order_id=order_id)
            outcome = "error"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
