"""Business alerts: the merchant's rules, and their evaluation every 15 minutes.

The metrics come from what is kept anyway: today's and the 7 previous days' totals in the
aggregates (one BatchGetItem), the payment anomalies in the alerts (one Query of this hour's),
and the dead-letter queues' depths (one GetQueueAttributes each). A rule that fires is recorded
in the alerts once per window (storage/alert_rules.py), where `GET /v1/admin/alerts?kind=
business_alert` lists it.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib import clock, queues
from chalicelib.domain import alert_rules as rules
from chalicelib.domain.analytics import days_between
from chalicelib.errors import BadRequest, Conflict
from chalicelib.log import get_logger
from chalicelib.storage import alert_rules as store
from chalicelib.storage import analytics as aggregates

log = get_logger(__name__)
PAYMENT_ANOMALY = "payment_anomaly"  # what services/payments.py records for a refused notify


def current_rules() -> tuple[list[rules.Rule], int]:
    stored, version = store.get_rules()
    return rules.merged(stored), version


def change_rules(changes: list[dict[str, Any]], admin: str, expected_version: int | None) -> tuple[list[rules.Rule], int]:
    """Apply the changes (each: rule, and any of enabled, threshold, min_samples) together."""
    stored, version = store.get_rules()
    if expected_version is not None and expected_version != version:
        raise Conflict("The alert rules were changed meanwhile; read them again", code="version_conflict",
                       details=[{"field": "version", "message": f"current version is {version}"}])
    by_name = {rule.rule: rule for rule in rules.merged(stored)}
    for index, change in enumerate(changes):
        try:
            by_name[change["rule"]] = rules.change(by_name[change["rule"]], change.get("enabled"),
                                                   change.get("threshold"), change.get("min_samples"))
        except ValueError as error:
            raise BadRequest(str(error), code="invalid_alert_rule",
                             details=[{"field": f"rules.{index}.threshold", "message": str(error)}]) from None
    updated = [by_name[name] for name in rules.RULES]
    try:
        version = store.save_rules(updated, version, clock.now(), admin)
    except store.ConditionFailed:
        raise Conflict("The alert rules were changed meanwhile; read them again", code="version_conflict") from None
    log.info("alert rules changed", by=admin, version=version)
    return updated, version


def evaluate(now: datetime | None = None) -> dict[str, Any]:
    """Evaluate every enabled rule now; record each firing once per window."""
    now = now or clock.now()
    current, _ = current_rules()
    enabled = [rule for rule in current if rule.enabled]
    if not enabled:
        return {"fired": [], "recorded": []}
    metrics = gather_metrics(now, {rule.rule for rule in enabled})
    fired, recorded = [], []
    for rule in enabled:
        firing = rules.evaluate(rule, metrics, now)
        if firing is None:
            continue
        fired.append(firing.rule)
        if store.record_firing(firing, now, window_start(firing.rule, now)):
            recorded.append(firing.rule)
            log.warning("business alert", rule=firing.rule, window=firing.window, value=firing.value,
                        threshold=firing.threshold)
    return {"fired": fired, "recorded": recorded}


def window_start(rule: str, now: datetime) -> datetime:
    local = now.astimezone(clock.CHINA_TZ)
    start = local.replace(minute=0, second=0, microsecond=0)
    if rules.WINDOWS[rule] == "day":
        start = start.replace(hour=0)
    return start.astimezone(timezone.utc)


def gather_metrics(now: datetime, wanted: set[str]) -> rules.Metrics:
    today = now.astimezone(clock.CHINA_TZ).date()
    days = days_between(today - timedelta(days=rules.BASELINE_DAYS), today)
    totals = aggregates.totals(days)
    counts = totals.get(today.isoformat(), {})
    notify_failures = (store.count_alerts_since(PAYMENT_ANOMALY, window_start("notify_failures", now))
                       if "notify_failures" in wanted else 0)
    dead_letters = dead_letter_depth() if "dead_letter_depth" in wanted else 0
    return rules.Metrics(orders=counts.get("orders", 0), cancelled=counts.get("cancelled", 0),
                         pay_requests=counts.get("pay_requests", 0), paid_orders=counts.get("paid_orders", 0),
                         notify_failures=notify_failures, dead_letters=dead_letters,
                         refund_fen=counts.get("refund_fen", 0),
                         baseline_refund_fen=tuple(totals.get(day, {}).get("refund_fen", 0) for day in days[:-1]))


def dead_letter_depth() -> int:
    """Messages waiting in every dead-letter queue of the app (visible and in flight)."""
    client = queues._client()
    total = 0
    for spec in queues.ALL_QUEUES:
        url = queues.queue_url(spec.dead_letter_name)
        attributes = client.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
        values = attributes.get("Attributes", {})
        total += int(values.get("ApproximateNumberOfMessages", 0)) + int(values.get("ApproximateNumberOfMessagesNotVisible", 0))
    return total
