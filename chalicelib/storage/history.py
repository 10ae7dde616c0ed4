"""Table `view_history`: one item per (user, product) the user viewed, holding the last view.

Recording a view is ONE PutItem of a ~100-byte item (1 WCU, no read, no index to write): the
same key for every view of a product, so a repeated view overwrites the item and moves the
product to the top. Its condition keeps the newest view (`viewed_at` absent or older): a late,
slower write of an earlier view never moves a product down. `expires_at` is the table's TTL
attribute (the view + 90 days): DynamoDB deletes old views itself, lazily, so reads also skip
expired ones.

There is no index on `viewed_at` (one would make every view cost up to 3 WCU: the item and
the index's delete + put when the sort key changes). A history read Queries the user's whole
partition and orders it in memory. The partition is bounded by the number of distinct products
viewed in 90 days, which is at most the catalog (a ~100-byte item: ~9,000 per 1 MB page); items
beyond the newest 100 are never shown and never trimmed: a trim would cost writes and could
delete a view recorded meanwhile. The TTL removes them.

The model's timeouts are short and it retries once: a slow or failing history table must not
hold a product page for long (the write is best-effort, services/history.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name


class ViewRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("view_history")
        connect_timeout_seconds = 1
        read_timeout_seconds = 1
        max_retry_attempts = 1

    user_id = UnicodeAttribute(hash_key=True)
    product_id = UnicodeAttribute(range_key=True)
    viewed_at = NumberAttribute()  # epoch milliseconds of the last view
    expires_at = TTLAttribute()


@dataclass(frozen=True)
class View:
    product_id: str
    viewed_at_ms: int


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def record_view(user_id: str, product_id: str, now: datetime, keep: timedelta) -> bool:
    """Put the view (one PutItem); False when a newer view of the product is stored already."""
    viewed_at_ms = _ms(now)
    record = ViewRecord(user_id, product_id, viewed_at=viewed_at_ms, expires_at=now + keep)
    try:
        with condition_failure_as(ConditionFailed):
            record.save(condition=ViewRecord.viewed_at.does_not_exist() | (ViewRecord.viewed_at <= viewed_at_ms))
    except ConditionFailed:
        return False
    return True


def recent_views(user_id: str, now: datetime, keep: timedelta, limit: int) -> list[View]:
    """The user's `limit` latest views not older than `keep`, newest first (ties: product id).
    Consistent Query of the partition, every page."""
    oldest_ms = _ms(now - keep)
    views = [View(record.product_id, int(record.viewed_at))
             for record in ViewRecord.query(user_id, consistent_read=True,
                                            attributes_to_get=["product_id", "viewed_at"])
             if int(record.viewed_at) >= oldest_ms]
    views.sort(key=lambda view: (-view.viewed_at_ms, view.product_id))
    return views[:limit]
