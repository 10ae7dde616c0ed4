"""The worker/scheduler loop: real SQS events against moto's server, schedules, rate/cron parsing."""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid

import boto3
import pytest
from chalice import Chalice
from chalice.app import Cron, Rate

from local.dynamodb_local import start_moto_server
from local.processes import free_port, wait_for_port
from local.worker import CronSchedule, Worker, parse_rate, scheduled_event


@pytest.fixture(scope="module")
def sqs_endpoint():
    port = free_port()
    server = start_moto_server(port, "test-worker-sqs-moto")
    try:
        wait_for_port(port, timeout=30, process=server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def sqs(sqs_endpoint):
    return boto3.client("sqs", endpoint_url=sqs_endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def make_queue(sqs, visibility_timeout: int = 30, max_receive_count: int | None = None) -> tuple[str, str]:
    name = f"q-{uuid.uuid4().hex[:10]}"
    attributes = {"VisibilityTimeout": str(visibility_timeout)}
    if max_receive_count is not None:
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn,
                                                  "maxReceiveCount": str(max_receive_count)})
    return name, sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def make_app(queue_name: str, calls: list, fail: bool = False) -> Chalice:
    """A tiny app with one SQS handler and one schedule, as the real jobs blueprint has."""
    app = Chalice(app_name="worker-test")

    @app.on_sqs_message(queue=queue_name, batch_size=5)
    def consume(event):
        bodies = [record.body for record in event]
        calls.append(("sqs", event.to_dict(), bodies))
        if fail:  # like pydantic, quote the input on later lines of the message
            raise RuntimeError(f"handler failed on purpose\n  input_value={bodies}")

    @app.schedule("rate(1 minute)")
    def tick(event):
        calls.append(("schedule", event.to_dict(), None))

    return app


def counts(sqs, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_handler_gets_a_real_sqs_event_and_the_batch_is_deleted(sqs):
    name, url = make_queue(sqs)
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}),
                         MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}})
    calls: list = []
    worker = Worker(make_app(name, calls), sqs_client=sqs)

    deliveries = worker.drain_queues(max_batches=5)

    assert [d.ok for d in deliveries] == [True] and len(deliveries[0].message_ids) == 3
    kind, event, bodies = calls[0]
    assert kind == "sqs" and sorted(bodies) == [json.dumps({"n": n}) for n in range(3)]
    record = event["Records"][0]
    assert set(record) == {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                           "eventSource", "eventSourceARN", "awsRegion"}
    assert record["eventSource"] == "aws:sqs" and record["awsRegion"] == "us-east-1"
    assert record["eventSourceARN"].endswith(f":{name}") and record["eventSourceARN"].startswith("arn:aws:sqs:")
    assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId",
            "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["kind"]["stringValue"] == "test"
    assert record["messageAttributes"]["kind"]["dataType"] == "String"
    assert counts(sqs, url) == (0, 0)


def test_failed_batch_is_left_for_retry_and_logged_as_one_json_line(sqs, capsys):
    name, url = make_queue(sqs, visibility_timeout=30)
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    worker = Worker(make_app(name, [], fail=True), sqs_client=sqs)

    deliveries = worker.drain_queues(max_batches=3)

    assert [d.ok for d in deliveries] == [False]  # then invisible: the next receive is empty
    assert counts(sqs, url) == (0, 1)  # not deleted, waiting out its visibility timeout
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    failure = [line for line in lines if line["message"].startswith("sqs handler failed")]
    assert len(failure) == 1 and failure[0]["level"] == "ERROR" and failure[0]["handler"] == "consume"
    assert failure[0]["error"] == "RuntimeError: handler failed on purpose" and "consume" in failure[0]["stack"]
    assert "poison" not in json.dumps(failure[0])  # message bodies are never logged


def test_poison_message_moves_to_the_dead_letter_queue_after_max_receive_count(sqs):
    name, url = make_queue(sqs, visibility_timeout=0, max_receive_count=2)
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    calls: list = []
    worker = Worker(make_app(name, calls, fail=True), sqs_client=sqs)

    deliveries = worker.drain_queues(max_batches=5)

    assert [d.ok for d in deliveries] == [False, False]
    assert [event["Records"][0]["attributes"]["ApproximateReceiveCount"] for _, event, _ in calls] == ["1", "2"]
    dlq_url = sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"]
    moved = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=0).get("Messages", [])
    assert [m["Body"] for m in moved] == ["poison"]


def test_schedule_handler_gets_a_scheduled_event(sqs):
    calls: list = []
    worker = Worker(make_app("unused", calls), sqs_client=sqs)

    assert [d.ok for d in worker.fire_schedules()] == [True]
    _, event, _ = calls[0]
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["detail"] == {} and event["version"] == "0"
    assert event["resources"][0].startswith("arn:aws:events:us-east-1:") and event["resources"][0].endswith("-tick")
    assert dt.datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")


def test_run_worker_polls_queues_and_fires_schedules_until_stopped(sqs):
    name, url = make_queue(sqs)
    calls: list = []
    worker = Worker(make_app(name, calls), sqs_client=sqs)
    stop = threading.Event()
    # rate(1 minute) scaled by 0.005 -> every 0.3 s
    thread = threading.Thread(target=worker.run, args=(stop,), kwargs={"poll_seconds": 1, "schedule_scale": 0.005})
    thread.start()
    try:
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
                any(c[0] == "sqs" for c in calls) and sum(c[0] == "schedule" for c in calls) >= 2):
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive()
    assert [c[2] for c in calls if c[0] == "sqs"] == [["hello"]]
    assert sum(c[0] == "schedule" for c in calls) >= 2
    assert counts(sqs, url) == (0, 0)


def test_an_app_without_event_sources_runs_and_stops():
    worker = Worker(Chalice(app_name="empty"), sqs_client=object())
    stop = threading.Event()
    stop.set()
    started = time.monotonic()
    worker.run(stop, poll_seconds=1)
    assert worker.queues == [] and worker.schedules == [] and time.monotonic() - started < 3
    assert worker.drain_queues() == [] and worker.fire_schedules() == []


def test_the_real_app_sources_are_found():
    from local.worker import load_app

    app = load_app()
    worker = Worker(app, sqs_client=object())
    names = {config.name for config in app.event_sources}
    assert {q.name for q in worker.queues} | {s.name for s in worker.schedules} <= names
    for source in worker.queues + worker.schedules:
        assert source.handler is app.handler_map[source.name]


@pytest.mark.parametrize("expression, seconds", [
    ("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(1 hour)", 3600), ("rate(2 hours)", 7200),
    ("rate(1 day)", 86400), ("rate(3 days)", 259200), (Rate(10, Rate.MINUTES), 600), (Rate(1, Rate.HOURS), 3600),
    (Rate(2, Rate.DAYS), 172800),
])
def test_rate_parsing(expression, seconds):
    assert parse_rate(expression) == seconds


@pytest.mark.parametrize("bad", ["rate(0 minutes)", "rate(5 weeks)", "rate(minutes)", "cron(* * * * ? *)", ""])
def test_bad_rates_are_refused(bad):
    with pytest.raises(ValueError):
        parse_rate(bad)


def test_cron_expressions():
    every_15 = CronSchedule.parse("cron(*/15 * * * ? *)")
    assert every_15.matches(dt.datetime(2026, 1, 1, 10, 30)) and not every_15.matches(dt.datetime(2026, 1, 1, 10, 31))
    weekday_2am = CronSchedule.parse(Cron(0, 2, "?", "*", "MON-FRI", "*"))
    assert weekday_2am.matches(dt.datetime(2026, 1, 5, 2, 0))  # a Monday
    assert not weekday_2am.matches(dt.datetime(2026, 1, 4, 2, 0))  # a Sunday
    assert not weekday_2am.matches(dt.datetime(2026, 1, 5, 3, 0))
    assert CronSchedule.parse("cron(0 0 1 JAN,JUL ? 2026-2030)").matches(dt.datetime(2026, 7, 1, 0, 0))
    for bad in ("cron(0 0 L * ? *)", "cron(* * *)", "rate(1 minute)"):
        with pytest.raises(ValueError):
            CronSchedule.parse(bad)


def test_unsupported_cron_is_approximated_every_minute():
    app = Chalice(app_name="cron-app")

    @app.schedule("cron(0 12 L * ? *)")
    def monthly(event):
        return None

    schedule = Worker(app, sqs_client=object()).schedules[0]
    assert schedule.cron is None and schedule.interval_seconds is None
    assert "approximated" in schedule.notes[0]


def test_scheduled_event_shape():
    event = scheduled_event("app-local-tick", "ap-east-1", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc))
    assert event["time"] == "2026-01-02T03:04:05Z" and event["region"] == "ap-east-1"
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources",
                          "detail"}
