"""Lists of orders: a Query of one of the orders table's keys-only indexes for the page's keys,
then the orders themselves in one consistent BatchGetItem (storage/orders.py says why the
indexes hold keys only).

What a filter needs is checked on the orders read, not in DynamoDB: a keys-only index has
nothing to filter on. DynamoDB's own filters applied after `Limit` too, so a page may hold fewer
items than asked and still have a next page, as before. An order that moved since the index saw
it (a newer status) is left out of a status-filtered page: the index is eventually consistent,
the order is not.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from chalicelib.storage.orders import ALL_ORDERS, SHIPPING_UPLOAD_PENDING, Order, OrderRecord, from_record

SOLD_STATUSES = ("paid", "shipped", "completed", "refunded")  # orders whose payment was applied
_EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime(9999, 1, 1, tzinfo=timezone.utc)


def fetch(order_ids: list[str]) -> list[Order]:
    """The orders, in the order of `order_ids` (missing ones left out)."""
    if not order_ids:
        return []
    found = {record.order_id: from_record(record)
             for record in OrderRecord.batch_get(list(dict.fromkeys(order_ids)), consistent_read=True)}
    return [found[order_id] for order_id in order_ids if order_id in found]


def list_user_orders(user_id: str, status: str | None, limit: int,
                     cursor: dict[str, Any] | None) -> tuple[list[Order], dict[str, Any] | None]:
    """A page of the user's orders, newest first, optionally of one status."""
    keys = OrderRecord.by_user.query(user_id, scan_index_forward=False, limit=limit, last_evaluated_key=cursor)
    page = _with_status(fetch([key.order_id for key in keys]), status)
    return page, keys.last_evaluated_key


def list_orders_for_merchant(status: str | None, created_from: datetime | None, created_to: datetime | None,
                             limit: int, cursor: dict[str, Any] | None) -> tuple[list[Order], dict[str, Any] | None]:
    """Orders newest first, by status (or all) within an optional creation-time range."""
    index, partition = (OrderRecord.by_status, status) if status else (OrderRecord.all_by_time, ALL_ORDERS)
    # Clamped to the years orders can have: DynamoDB refuses a BETWEEN whose bounds are out of
    # order, and a far-off time cannot even be converted to UTC.
    low = max(created_from or _EARLIEST, _EARLIEST)
    high = min(created_to or _LATEST, _LATEST)
    if low > high:
        return [], None
    keys = index.query(partition, OrderRecord.created_at.between(low, high), scan_index_forward=False,
                       limit=limit, last_evaluated_key=cursor)
    page = _with_status(fetch([key.order_id for key in keys]), status)
    return page, keys.last_evaluated_key


def shipping_upload_stragglers(status: str, created_after: datetime, stale_before: datetime,
                               limit: int) -> list[Order]:
    """Orders in `status`, created after `created_after`, whose shipping-info upload has waited
    since before `stale_before`: pending, or never started (shipped orders; paid virtual ones).
    Reads the orders of that status and window, oldest first, until `limit` are found."""
    def waiting(order: Order) -> bool:
        upload = order.shipping_upload
        if upload is not None:
            return upload.get("status") == SHIPPING_UPLOAD_PENDING and _utc(upload["updated_at"]) < stale_before
        if status == "shipped":
            return order.shipped_at is not None and order.shipped_at < stale_before
        return status == "paid" and order.delivery_method == "none" and order.paid_at is not None \
            and order.paid_at < stale_before

    return _filtered(status, created_after, waiting, limit)


def orders_with_uncounted_sales(created_after: datetime, limit: int) -> list[Order]:
    """Paid orders (whatever became of them since) created after `created_after` whose units the
    sales job has not counted. The index is eventually consistent: an order paid a moment ago
    shows up on a later run. Its lines never change, so they are safe to count from."""
    found: list[Order] = []
    for status in SOLD_STATUSES:  # newest first: what was paid since the last run comes first
        found += _filtered(status, created_after, lambda order: not order.sales_counted, limit - len(found),
                           newest_first=True)
        if len(found) >= limit:
            break
    return found


def _filtered(status: str, created_after: datetime, wanted: Callable[[Order], bool], limit: int,
              newest_first: bool = False) -> list[Order]:
    """Up to `limit` orders of `status` created after `created_after` that are `wanted`. Reads
    the window's keys page by page and its orders 100 at a time, as a filtered Query of a
    full-copy index read every item of the window before."""
    if limit <= 0:
        return []
    keys = OrderRecord.by_status.query(status, OrderRecord.created_at > created_after,
                                       scan_index_forward=not newest_first, page_size=100)
    found: list[Order] = []
    for chunk in _chunks((key.order_id for key in keys), 100):
        found += [order for order in _with_status(fetch(chunk), status) if wanted(order)]
        if len(found) >= limit:
            return found[:limit]
    return found


def _with_status(page: list[Order], status: str | None) -> list[Order]:
    return page if status is None else [order for order in page if order.status == status]


def _chunks(ids: Iterable[str], size: int) -> Iterable[list[str]]:
    chunk: list[str] = []
    for order_id in ids:
        chunk.append(order_id)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _utc(value: Any) -> datetime:
    """A datetime kept inside a map attribute comes back as it was stored: ISO text or datetime."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
