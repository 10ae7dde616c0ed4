"""Table `alert_rules`: the merchant's business alert rules (one item), and their firings.

The rules are one JSON document with a version: a change is a put conditioned on the version
read (or on the item being absent), so two merchants editing at once cannot lose a change.

A firing goes into the `alerts` table (kind `business_alert`, what `GET /v1/admin/alerts`
lists) under a sort key made of the window and an id derived from (rule, window), put only if
absent: a rule fires at most once per window however often, and however concurrently, the
evaluation runs. One write, so there is no gap between "decided to fire" and "recorded".
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from chalicelib.domain.alert_rules import Firing, Rule
from chalicelib.storage.alerts import AlertRecord
from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name

BUSINESS_ALERT = "business_alert"
RULES_KEY = "rules"


class AlertRuleSetRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("alert_rules")

    key = UnicodeAttribute(hash_key=True)
    rules = UnicodeAttribute()  # JSON: {rule: {enabled, threshold, min_samples}}
    version = NumberAttribute()
    updated_at = UTCDateTimeAttribute()
    updated_by = UnicodeAttribute(null=True)


def get_rules() -> tuple[dict[str, Rule], int]:
    """The stored rules by name (only those ever changed) and the version (0: none stored)."""
    try:
        record = AlertRuleSetRecord.get(RULES_KEY, consistent_read=True)
    except AlertRuleSetRecord.DoesNotExist:
        return {}, 0
    stored = json.loads(record.rules)
    return ({name: Rule(name, bool(v["enabled"]), int(v["threshold"]), int(v.get("min_samples", 0)))
             for name, v in stored.items()}, int(record.version))


def save_rules(rules: list[Rule], expected_version: int, now: datetime, by: str) -> int:
    """Store the rules if the version is still `expected_version`; the new version.
    Raises ConditionFailed when someone changed them meanwhile."""
    document = json.dumps({rule.rule: {"enabled": rule.enabled, "threshold": rule.threshold,
                                       "min_samples": rule.min_samples} for rule in rules}, sort_keys=True)
    record = AlertRuleSetRecord(RULES_KEY, rules=document, version=expected_version + 1, updated_at=now, updated_by=by)
    condition = (AlertRuleSetRecord.key.does_not_exist() if expected_version == 0
                 else AlertRuleSetRecord.version == expected_version)
    with condition_failure_as(ConditionFailed):
        record.save(condition=condition)
    return expected_version + 1


def firing_id(rule: str, window: str) -> str:
    return "ba" + hashlib.sha256(f"{rule}|{window}".encode()).hexdigest()[:16]


def record_firing(firing: Firing, now: datetime, window_start: datetime) -> bool:
    """Record the firing in the alerts once per (rule, window); False when it was recorded already."""
    alert_id = firing_id(firing.rule, firing.window)
    detail: dict[str, Any] = {"rule": firing.rule, "window": firing.window, "value": firing.value,
                              "threshold": firing.threshold, **firing.detail}
    record = AlertRecord(BUSINESS_ALERT, f"{window_start.isoformat()}#{alert_id}", alert_id=alert_id,
                         threshold=firing.threshold, detail=detail, created_at=now)
    try:
        with condition_failure_as(ConditionFailed):
            record.save(condition=AlertRecord.sort_key.does_not_exist())
    except ConditionFailed:
        return False
    return True


def count_alerts_since(kind: str, since: datetime, max_items: int = 1000) -> int:
    """How many alerts of `kind` were recorded at or after `since` (a Query of the newest, bounded)."""
    count = 0
    for _ in AlertRecord.query(kind, AlertRecord.sort_key >= since.isoformat(), limit=max_items,
                               attributes_to_get=["kind", "sort_key"]):
        count += 1
    return count
