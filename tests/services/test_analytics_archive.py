"""The optional Firehose archive (chalicelib/analytics_archive.py) on moto's Firehose and S3: off
unless ANALYTICS_FIREHOSE_STREAM is set; rows are the business events the aggregates count;
PutRecordBatch in calls of at most 500 records / 4 MiB; refused records sent again, and only
those; still refused after the attempts: raised, so the stream batch comes again."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest

from chalicelib import analytics_archive as archive
from chalicelib import clock
from tests.services.analytics_records import evolve, order_change, tracking_event
from tests.storage.order_fixtures import make_order

NOW = datetime(2024, 5, 1, 4, 0, tzinfo=timezone.utc)  # 12:00 in Shanghai
STREAM = "test-analytics"
BUCKET = "test-analytics-archive"


@pytest.fixture
def firehose(aws, monkeypatch):
    """A delivery stream on moto writing to an S3 bucket; the archive's client is moto's."""
    archive.reset_client()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    client = boto3.client("firehose")
    client.create_delivery_stream(
        DeliveryStreamName=STREAM, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/firehose",
                                            "BucketARN": f"arn:aws:s3:::{BUCKET}", "Prefix": "events/"})
    monkeypatch.setenv(archive.STREAM_ENV, STREAM)
    with clock.frozen_at(NOW):
        yield client
    client.delete_delivery_stream(DeliveryStreamName=STREAM)
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=BUCKET)
    archive.reset_client()


def _archived() -> list[dict]:
    s3 = boto3.client("s3")
    rows = []
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().decode("utf-8")
        rows += [json.loads(line) for line in body.splitlines() if line]
    return rows


def _life_of_an_order() -> list[dict]:
    placed = make_order("o1", {"s1": 2, "s2": 1}, user_id="u1")
    asked = evolve(placed, prepay={"prepay_id": "wx1", "version": "v3"})
    paid = evolve(asked, status="paid", paid_at=NOW)
    part = evolve(paid, refunded_fen=1000)
    full = evolve(part, status="refunded", refunded_fen=3000)
    return [order_change(None, placed), order_change(placed, asked), order_change(asked, paid),
            order_change(paid, part), order_change(part, full)]


class _Flaky:
    """moto's client, refusing the records `refuse(call, index)` names (Firehose's partial failure)."""

    def __init__(self, client, refuse):
        self.client, self.refuse, self.calls = client, refuse, []

    def put_record_batch(self, DeliveryStreamName, Records):  # noqa: N803 (boto3's names)
        call = len(self.calls)
        self.calls.append(len(Records))
        refused = [i for i in range(len(Records)) if self.refuse(call, i)]
        accepted = [record for i, record in enumerate(Records) if i not in refused]
        if accepted:
            self.client.put_record_batch(DeliveryStreamName=DeliveryStreamName, Records=accepted)
        return {"FailedPutCount": len(refused), "Encrypted": False,
                "RequestResponses": [{"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "slow down"}
                                     if i in refused else {"RecordId": f"r{call}-{i}"} for i in range(len(Records))]}


@pytest.fixture
def no_sleep(monkeypatch):
    monkeypatch.setattr(archive, "_sleep", lambda seconds: None)


def test_off_without_the_setting_sends_nothing_and_builds_no_client(aws, monkeypatch):
    monkeypatch.delenv(archive.STREAM_ENV, raising=False)

    def refuse():
        raise AssertionError("no Firehose client when the archive is off")
    monkeypatch.setattr(archive, "_client", refuse)
    with clock.frozen_at(NOW):
        assert archive.feed(_life_of_an_order()) == 0


def test_each_business_event_becomes_one_row_keyed_like_the_aggregates_marker(firehose):
    view = tracking_event("u1", "view-0001", "product_view", NOW, source="poster", product_id="p1")
    cart = tracking_event("u1", "cart-0001", "add_to_cart", NOW, product_id="p1", quantity=2)
    sent = archive.feed([view, cart, *_life_of_an_order()])

    rows = {row["event_key"]: row for row in _archived()}
    assert sent == len(rows) == 8
    assert {key: row["kind"] for key, row in rows.items()} == {
        "e:u1:view-0001": "product_view", "e:u1:cart-0001": "add_to_cart", "o:o1:placed": "order_placed",
        "o:o1:pay_requested": "order_pay_requested", "o:o1:paid": "order_paid", "o:o1:refund:1000": "order_refund",
        "o:o1:refund:3000": "order_refund", "o:o1:refunded": "order_refunded"}
    assert rows["e:u1:view-0001"] == {"event_key": "e:u1:view-0001", "kind": "product_view", "day": "2024-05-01",
                                      "at_ms": int(NOW.timestamp() * 1000), "user_id": "u1", "source": "poster",
                                      "product_id": "p1"}
    assert rows["e:u1:cart-0001"]["quantity"] == 2
    paid = rows["o:o1:paid"]
    assert (paid["day"], paid["amount_fen"], paid["order_id"], paid["user_id"]) == ("2024-05-01", 3000, "o1", "u1")
    assert paid["lines"] == [{"product_id": "p1", "sku_id": "s1", "quantity": 2, "payable_fen": 2000},
                             {"product_id": "p1", "sku_id": "s2", "quantity": 1, "payable_fen": 1000}]
    assert rows["o:o1:placed"]["amount_fen"] == 3000
    assert (rows["o:o1:refund:1000"]["amount_fen"], rows["o:o1:refund:3000"]["amount_fen"]) == (1000, 2000)
    assert "amount_fen" not in rows["o:o1:refunded"]
    columns = {name for name, _ in archive.COLUMNS}
    assert all(set(row) <= columns for row in rows.values())  # nothing the Parquet conversion would drop


def test_rows_go_in_calls_of_at_most_500_records_and_4_mib(firehose, monkeypatch):
    flaky = _Flaky(firehose, lambda call, index: False)
    rows = [{"event_key": f"e:u{i}:x", "kind": "page_view", "day": "2024-05-01", "user_id": f"u{i}"}
            for i in range(1201)]
    assert archive.send(rows, STREAM, client=flaky) == 1201
    assert flaky.calls == [500, 500, 201]
    assert sorted(row["event_key"] for row in _archived()) == sorted(row["event_key"] for row in rows)

    big = [b"x" * (900 * 1024)] * 10  # 900 KiB each: 4 to a call
    assert [len(batch) for batch in archive.batches(big)] == [4, 4, 2]


def test_only_the_refused_records_are_sent_again(firehose, no_sleep):
    # First call: every third record refused; second call: the first of those refused again.
    flaky = _Flaky(firehose, lambda call, index: (call == 0 and index % 3 == 0) or (call == 1 and index == 0))
    rows = [{"event_key": f"e:u1:{i:04d}", "kind": "share", "day": "2024-05-01", "user_id": "u1"} for i in range(30)]
    assert archive.send(rows, STREAM, client=flaky) == 30
    assert flaky.calls == [30, 10, 1]
    keys = [row["event_key"] for row in _archived()]
    assert sorted(keys) == sorted(row["event_key"] for row in rows)  # each exactly once


def test_records_still_refused_after_the_attempts_raise_so_the_stream_batch_comes_again(firehose, no_sleep):
    flaky = _Flaky(firehose, lambda call, index: index == 1 or call > 0)  # the second record, always
    rows = [{"event_key": f"e:u1:{i}", "kind": "share", "day": "2024-05-01", "user_id": "u1"} for i in range(3)]
    with pytest.raises(archive.ArchiveFailed, match="1 of 3 records"):
        archive.send(rows, STREAM, client=flaky)
    assert flaky.calls == [3] + [1] * (archive.ATTEMPTS - 1)


def test_an_unknown_stream_is_raised_at_once(firehose, no_sleep):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as error:
        archive.send([{"event_key": "e:u1:1", "kind": "share"}], "no-such-stream")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_the_stream_consumers_feed_the_archive_after_counting(firehose):
    from app import app
    from chalicelib.services import reports

    placed = make_order("o2", {"s1": 1}, user_id="u2")
    paid = evolve(placed, status="paid", paid_at=NOW)
    app.handler_map["count_order_changes"]({"Records": [order_change(None, placed), order_change(placed, paid)]},
                                           None)
    app.handler_map["count_tracking_events"]({"Records": [tracking_event("u2", "view-0002", "page_view", NOW)]},
                                             None)
    assert sorted(row["event_key"] for row in _archived()) == ["e:u2:view-0002", "o:o2:paid", "o:o2:placed"]
    day = NOW.astimezone(clock.CHINA_TZ).date()
    assert reports.sales(day, day).items[0].gmv_fen == 1000  # counted as before
