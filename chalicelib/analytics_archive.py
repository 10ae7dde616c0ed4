"""The optional archive of analytics events: Kinesis Data Firehose -> S3 (Parquet) -> Athena.

Off unless `ANALYTICS_FIREHOSE_STREAM` names a delivery stream (the package sets it on the two
stream consumers when the stack's `AnalyticsArchive` parameter is `true`; unset, `feed` sends
nothing and builds no client). When on, the stream consumers (jobs/analytics.py) hand their
records here after counting them: every business event the aggregates count becomes one flat
row (`COLUMNS`, the Glue table's schema, which infra/build_template.py reads from here), sent as
newline-terminated JSON with `PutRecordBatch` (up to 500 records and 4 MiB a call); Firehose
converts them to Parquet with the Glue table's schema and writes them under
`events/dt=<arrival day, UTC>/` in the archive bucket. Queries: docs/analytics.md.

Delivery is at least once: records Firehose refuses (`FailedPutCount`, throttling) are sent
again with backoff, up to `ATTEMPTS` times, then `ArchiveFailed` is raised, so the stream batch
is delivered again (its counting is then skipped by the markers, and its rows sent again). A
row can thus land twice: `event_key` (the aggregates' marker key, unique per business event)
is what the queries deduplicate on.
"""
from __future__ import annotations

import functools
import json
import os
import random
import time
from datetime import datetime, timezone
from typing import Any, Iterable

from chalicelib.log import get_logger

log = get_logger(__name__)

STREAM_ENV = "ANALYTICS_FIREHOSE_STREAM"
MAX_RECORDS_PER_CALL = 500  # PutRecordBatch's limits
MAX_BYTES_PER_CALL = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1000 * 1024
ATTEMPTS = 5  # calls per record at most; then the stream batch is retried whole
BACKOFF_SECONDS = 0.1  # doubled each attempt, with full jitter
RETRYABLE_CALL_ERRORS = {"ServiceUnavailableException", "ThrottlingException", "InternalFailure",
                         "InternalServerError", "LimitExceededException"}

# The archive's rows: (column, Hive/Glue type). The Glue table (infra/build_template.py) is built
# from this list, and Firehose converts each JSON row to Parquet with it; a field not listed is
# dropped by the conversion. Rows carry only the fields their kind has.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_key", "string"),  # unique per business event (the aggregates' marker): deduplicate on it
    ("kind", "string"),  # page_view, product_view, add_to_cart, share, order_placed, order_pay_requested,
    #                      order_paid, order_cancelled, order_refund, order_refunded
    ("day", "string"),  # the Asia/Shanghai day it counts on (YYYY-MM-DD), as in the aggregates
    ("at_ms", "bigint"),  # when it happened (epoch ms)
    ("user_id", "string"),
    ("source", "string"),  # tracking events: source tag, scene_<n> or direct
    ("scene", "int"),
    ("page", "string"),
    ("product_id", "string"),
    ("sku_id", "string"),
    ("quantity", "int"),
    ("order_id", "string"),
    ("amount_fen", "bigint"),  # placed: payable; paid: payable (GMV); refund: the fen refunded by this change
    ("cancel_reason", "string"),
    ("lines", "array<struct<product_id:string,sku_id:string,quantity:int,payable_fen:bigint>>"),
)
PARTITION_KEY = ("dt", "string")  # Firehose's arrival day (UTC), from the S3 prefix
ORDER_KINDS = {"placed": "order_placed", "pay_requested": "order_pay_requested", "paid": "order_paid",
               "cancelled": "order_cancelled", "refund": "order_refund", "refunded": "order_refunded"}
# What each order event's amount is on the day's total (domain/analytics.py's counters).
ORDER_AMOUNTS = {"order_placed": "order_fen", "order_paid": "gmv_fen", "order_refund": "refund_fen"}


class ArchiveFailed(RuntimeError):
    """Firehose kept refusing some records; the stream batch must be delivered again."""


def stream_name() -> str | None:
    return os.environ.get(STREAM_ENV) or None


def feed(records: list[dict[str, Any]]) -> int:
    """Archive the business events of DynamoDB stream records (Lambda's event shape), if the
    archive is on; how many rows were sent (0 when off)."""
    name = stream_name()
    if not name:
        return 0
    return send(rows(records), name)


# --- rows ------------------------------------------------------------------------------------

def rows(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per business event of the records, as the aggregates count them (a record that
    cannot be read is skipped here too: the consumer has logged it)."""
    from chalicelib.services import analytics as consumer

    out: list[dict[str, Any]] = []
    for record in records:
        try:
            out += _rows_of(record, consumer)
        except (KeyError, ValueError, TypeError):
            continue
    return out


def _rows_of(record: dict[str, Any], consumer: Any) -> list[dict[str, Any]]:
    from chalicelib.domain import analytics as rules
    from chalicelib.storage import analytics as store
    from chalicelib.storage.events import EventRecord
    from chalicelib.storage.orders import OrderRecord

    table = consumer.table_of(record.get("eventSourceARN", ""))
    change = record["dynamodb"]
    if table == EventRecord.Meta.table_name and record.get("eventName") == "INSERT":
        return [_event_row(store.plain(change["NewImage"]), rules)]
    if table == OrderRecord.Meta.table_name and record.get("eventName") != "REMOVE":
        at = datetime.fromtimestamp(float(change.get("ApproximateCreationDateTime") or time.time()), timezone.utc)
        old, new = store.plain(change.get("OldImage")), store.plain(change.get("NewImage"))
        return _order_rows(old, new, at, rules)
    return []


def _event_row(event: dict[str, Any], rules: Any) -> dict[str, Any]:
    at_ms = int(event["at_ms"])
    row = {"event_key": f"e:{event['user_id']}:{event['event_id']}", "kind": str(event["kind"]),
           "day": rules.day_of(datetime.fromtimestamp(at_ms / 1000, timezone.utc)), "at_ms": at_ms,
           "user_id": str(event["user_id"]), "source": str(event.get("source") or rules.DIRECT)}
    for name in ("scene", "quantity"):
        if event.get(name) is not None:
            row[name] = int(event[name])
    for name in ("page", "product_id", "sku_id"):
        if event.get(name):
            row[name] = str(event[name])
    return row


def _order_rows(old: dict[str, Any] | None, new: dict[str, Any] | None, at: datetime,
                rules: Any) -> list[dict[str, Any]]:
    """The order's business events exactly as domain/analytics.py derives them (its units named
    `o:<order>:<event>`), with the day and amount they count."""
    if new is None:
        return []
    order_id = str(new["order_id"])
    prefix = f"o:{order_id}:"
    out = []
    for unit in rules.order_units(old, new, at).units:
        if not unit.key.startswith(prefix):
            continue  # unique-visitor units: not events of their own
        kind = ORDER_KINDS[unit.key[len(prefix):].split(":", 1)[0]]
        day, totals = next((day, counts) for (day, scope), counts in unit.counts.items() if scope == rules.TOTAL)
        row: dict[str, Any] = {"event_key": unit.key, "kind": kind, "day": day,
                               "at_ms": int(_moment_of(kind, new, at).timestamp() * 1000),
                               "user_id": str(new["user_id"]), "order_id": order_id}
        if kind in ORDER_AMOUNTS:
            row["amount_fen"] = int(totals.get(ORDER_AMOUNTS[kind], 0))
        if kind in ("order_placed", "order_paid"):
            row["lines"] = [{"product_id": str(line["product_id"]), "sku_id": str(line.get("sku_id") or ""),
                             "quantity": int(line["quantity"]), "payable_fen": int(line["payable_fen"])}
                            for line in new.get("lines") or ()]
        if kind == "order_cancelled" and new.get("cancel_reason"):
            row["cancel_reason"] = str(new["cancel_reason"])
        out.append(row)
    return out


def _moment_of(kind: str, order: dict[str, Any], at: datetime) -> datetime:
    from chalicelib.domain.analytics import _moment

    field = {"order_placed": "created_at", "order_paid": "paid_at", "order_cancelled": "cancelled_at"}.get(kind)
    return (_moment(order.get(field)) if field else None) or at


# --- sending -----------------------------------------------------------------------------------

def encode(row: dict[str, Any]) -> bytes:
    return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def batches(records: list[bytes]) -> list[list[bytes]]:
    """Records in calls of at most MAX_RECORDS_PER_CALL records and MAX_BYTES_PER_CALL bytes."""
    out: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for data in records:
        if current and (len(current) == MAX_RECORDS_PER_CALL or size + len(data) > MAX_BYTES_PER_CALL):
            out.append(current)
            current, size = [], 0
        current.append(data)
        size += len(data)
    if current:
        out.append(current)
    return out


def send(rows_: list[dict[str, Any]], stream: str, client: Any = None) -> int:
    """Put the rows into the delivery stream, retrying the records it refuses; how many were sent.
    Raises ArchiveFailed when some are still refused after ATTEMPTS calls."""
    records = []
    for row in rows_:
        data = encode(row)
        if len(data) > MAX_RECORD_BYTES:  # Firehose would refuse it on every attempt
            log.error("archive row too large; not archived", event_key=row.get("event_key"), bytes=len(data))
            continue
        records.append(data)
    client = client or _client()
    for batch in batches(records):
        _put_batch(client, stream, batch)
    return len(records)


def _put_batch(client: Any, stream: str, batch: list[bytes]) -> None:
    from botocore.exceptions import ClientError

    pending = batch
    for attempt in range(ATTEMPTS):
        if attempt:
            _sleep(random.uniform(0, BACKOFF_SECONDS * 2 ** (attempt - 1)))
        try:
            answer = client.put_record_batch(DeliveryStreamName=stream,
                                             Records=[{"Data": data} for data in pending])
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code not in RETRYABLE_CALL_ERRORS:
                raise
            log.warning("archive call refused; retrying", error=code, records=len(pending), attempt=attempt + 1)
            continue
        if not answer.get("FailedPutCount"):
            return
        responses = answer.get("RequestResponses") or []
        failed = [data for data, response in zip(pending, responses) if response.get("ErrorCode")]
        if len(responses) != len(pending):  # no per-record answer to trust: all of them again
            failed = pending
        codes = sorted({response.get("ErrorCode") for response in responses if response.get("ErrorCode")})
        log.warning("archive records refused; retrying", failed=len(failed), records=len(pending),
                    errors=",".join(str(code) for code in codes), attempt=attempt + 1)
        pending = failed
    raise ArchiveFailed(f"{len(pending)} of {len(batch)} records refused by {stream} after {ATTEMPTS} attempts")


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


@functools.lru_cache(maxsize=1)
def _client() -> Any:
    import boto3

    return boto3.client("firehose")


def reset_client() -> None:
    _client.cache_clear()
