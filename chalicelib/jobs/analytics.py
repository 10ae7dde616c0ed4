"""Analytics: the stream consumers that keep the aggregates, the nightly customer scoring, and
the business alert rules every 15 minutes.

The two `on_dynamodb_record` handlers read the streams of `orders` (NEW_AND_OLD_IMAGES: an
order's transitions) and `events` (NEW_IMAGE: tracking events). A stream's ARN carries a label
made when the stream is created, so it is not known when the app is imported: `make package`
points each event source at its table's `StreamArn` (infra/build_template.py), the local worker
finds the stream by the table's name (local/worker.py), and a `chalice deploy` stage sets
`ORDERS_STREAM_ARN` / `EVENTS_STREAM_ARN`. The ARN below only has to name the table.

After counting, both hand their records to the optional archive (chalicelib/analytics_archive.py:
Firehose -> S3 Parquet -> Athena), which sends nothing unless ANALYTICS_FIREHOSE_STREAM is set.
"""
from __future__ import annotations

import os

from chalice import Blueprint, Cron, Rate

from chalicelib.lazy import lazy_module
from chalicelib.log import get_logger
from chalicelib.settings import table_prefix_from_env

analytics = lazy_module("chalicelib.services.analytics")
rfm = lazy_module("chalicelib.services.rfm")
archive = lazy_module("chalicelib.analytics_archive")
commissions = lazy_module("chalicelib.services.commissions")
alert_rules = lazy_module("chalicelib.services.alert_rules")

bp = Blueprint(__name__)
log = get_logger(__name__)
STREAM_BATCH = 100


def stream_arn(table_base: str) -> str:
    """The table's stream ARN from the environment, else a stand-in that names the table
    (`arn:aws:dynamodb:<region>:<account>:table/<name>/stream/latest`)."""
    explicit = os.environ.get(f"{table_base.upper()}_STREAM_ARN")
    if explicit:
        return explicit
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return f"arn:aws:dynamodb:{region}:123456789012:table/{table_prefix_from_env()}{table_base}/stream/latest"


# Exactly once: every business event's ADDs are applied with a marker of the event itself
# (storage/analytics.py), so a redelivered batch, or one retried after a crash, adds nothing twice.
@bp.on_dynamodb_record(stream_arn=stream_arn("orders"), batch_size=STREAM_BATCH, starting_position="TRIM_HORIZON")
def count_order_changes(event) -> None:
    records = event.to_dict()["Records"]
    outcome = analytics.consume(records)
    # Commissions (分销) from the same records: each order re-read, every write keyed (exactly once);
    # before the archive, so a failure here (the batch delivered again) archives nothing twice.
    outcome["commission_orders"] = commissions.consume(records)["orders"]
    outcome["archived"] = archive.feed(records)  # only when ANALYTICS_FIREHOSE_STREAM is set
    log.info("order changes counted", **outcome)


@bp.on_dynamodb_record(stream_arn=stream_arn("events"), batch_size=STREAM_BATCH, starting_position="TRIM_HORIZON")
def count_tracking_events(event) -> None:
    records = event.to_dict()["Records"]
    outcome = analytics.consume(records)
    outcome["archived"] = archive.feed(records)  # only when ANALYTICS_FIREHOSE_STREAM is set
    log.info("tracking events counted", **outcome)


# 18:40 UTC is 02:40 in Asia/Shanghai: yesterday's payments are all counted by then.
@bp.schedule(Cron(40, 18, "*", "*", "?", "*"), description="Score customers (RFM, segments, lifecycle, cohorts)")
def score_customers(event) -> None:
    rfm.score_customers()


@bp.schedule(Rate(15, unit=Rate.MINUTES), description="Evaluate the business alert rules (each fires once per window)")
def evaluate_alert_rules(event) -> None:
    outcome = alert_rules.evaluate()
    if outcome["recorded"]:
        log.info("business alerts recorded", **outcome)
