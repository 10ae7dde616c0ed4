"""Table `alerts`: things the merchant should look at, newest first per kind (low_stock, ...).

Low stock is one alert per crossing: a SKU's `low_stock_alerted` flag is set by a conditional
update only when available is at or below its threshold and the flag is not yet set; only the
writer that flips it records the alert. The flag is cleared (re-armed) once available is above
the threshold again.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name
from chalicelib.storage.skus import SkuRecord


class AlertRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("alerts")

    kind = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)  # "<created_at ISO>#<alert_id>": newest last
    alert_id = UnicodeAttribute()
    sku_id = UnicodeAttribute(null=True)
    product_id = UnicodeAttribute(null=True)
    available = NumberAttribute(null=True)
    threshold = NumberAttribute(null=True)
    detail = MapAttribute(null=True)  # kind-specific facts, e.g. a mismatching payment notify
    created_at = UTCDateTimeAttribute()


@dataclass(frozen=True)
class Alert:
    alert_id: str
    kind: str
    sku_id: str | None
    product_id: str | None
    available: int | None
    threshold: int | None
    created_at: datetime
    detail: dict[str, Any] | None = None


def at_or_below_threshold(sku_ids: list[str]) -> list[str]:
    """Of `sku_ids`, those now at or below their low-stock threshold and not yet flagged (one
    consistent BatchGet: after a transaction, only a fresh read knows where stock ended up)."""
    if not sku_ids:
        return []
    records = SkuRecord.batch_get(sorted(set(sku_ids)), consistent_read=True, attributes_to_get=[
        "sku_id", "available", "low_stock_threshold", "low_stock_alerted"])
    return sorted(record.sku_id for record in records
                  if (record.low_stock_threshold or 0) > 0 and record.available <= record.low_stock_threshold
                  and not record.low_stock_alerted)


def flag_low_stock_crossing(sku_id: str) -> tuple[str, int, int] | None:
    """Set the SKU's alert flag if it just crossed; returns (product_id, available, threshold)
    for the one caller that flipped it, None for everyone else."""
    record = SkuRecord(sku_id)
    try:
        with condition_failure_as(ConditionFailed):
            record.update(
                actions=[SkuRecord.low_stock_alerted.set(True)],
                condition=SkuRecord.sku_id.exists() & (SkuRecord.low_stock_threshold > 0)
                & (SkuRecord.available <= SkuRecord.low_stock_threshold)
                & (SkuRecord.low_stock_alerted.does_not_exist() | (SkuRecord.low_stock_alerted == False)),  # noqa: E712
            )
    except ConditionFailed:
        return None
    return record.product_id, int(record.available), int(record.low_stock_threshold)


def rearm_low_stock(sku_id: str) -> bool:
    """Clear the flag once available is above the threshold again; True if it was cleared."""
    try:
        with condition_failure_as(ConditionFailed):
            SkuRecord(sku_id).update(
                actions=[SkuRecord.low_stock_alerted.set(False)],
                condition=(SkuRecord.low_stock_alerted == True)  # noqa: E712
                & (SkuRecord.available > SkuRecord.low_stock_threshold),
            )
    except ConditionFailed:
        return False
    return True


def record_alert(kind: str, now: datetime, *, sku_id: str | None = None, product_id: str | None = None,
                 available: int | None = None, threshold: int | None = None,
                 detail: dict[str, Any] | None = None) -> Alert:
    alert_id = "al" + secrets.token_hex(8)
    record = AlertRecord(kind, f"{now.isoformat()}#{alert_id}", alert_id=alert_id, sku_id=sku_id,
                         product_id=product_id, available=available, threshold=threshold, detail=detail,
                         created_at=now)
    with condition_failure_as(ConditionFailed):
        record.save(condition=AlertRecord.sort_key.does_not_exist())
    return _to_alert(record)


def _to_alert(record: AlertRecord) -> Alert:
    return Alert(alert_id=record.alert_id, kind=record.kind, sku_id=record.sku_id, product_id=record.product_id,
                 available=None if record.available is None else int(record.available),
                 threshold=None if record.threshold is None else int(record.threshold), created_at=record.created_at,
                 detail=record.detail.as_dict() if record.detail else None)


def list_alerts(kind: str, limit: int, cursor: dict[str, Any] | None) -> tuple[list[Alert], dict[str, Any] | None]:
    results = AlertRecord.query(kind, scan_index_forward=False, limit=limit, last_evaluated_key=cursor)
    return [_to_alert(record) for record in results], results.last_evaluated_key
