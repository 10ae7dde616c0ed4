"""The worker/scheduler loop that `chalice local` lacks.

It imports the Chalice app, finds its `on_sqs_message` and `schedule` event sources, and:

- long-polls each SQS queue and calls the handler with a real SQS Lambda event; the batch is
  deleted when the handler returns and left in the queue when it raises, so the visibility
  timeout and the queue's redrive policy (real SQS behaviour, here moto's server) retry it and
  finally move a poison message to the dead-letter queue;
- fires each schedule handler with a real EventBridge "Scheduled Event" at its rate
  (`rate(...)` strings, chalice `Rate`/`Cron` objects and `cron(...)` strings);
- reads the DynamoDB stream of each table an `on_dynamodb_record` handler names (its ARN names
  the table; the stream is found by DescribeTable) with boto3's `dynamodbstreams` client, shard
  by shard, and calls the handler with Lambda's DynamoDB event; a batch the handler refuses is
  read again from its first record (as Lambda retries it), so the handler sees redeliveries.

    python -m local.worker [--poll-seconds 2] [--schedule-scale 1.0] [--once]

`run_worker(stop_event)` runs it in threads; `Worker(app).drain_queues()`,
`.drain_streams()` and `.fire_schedules()` do one pass, for tests.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import signal
import sys
import threading
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from local.processes import ROOT, apply_local_defaults
from local.schedules import CronSchedule, expression_string, parse_rate

ACCOUNT_ID = "123456789012"  # moto's default account; the same in every ARN we make up
MAX_SQS_BATCH = 10
RECEIVE_ERROR_BACKOFF_SECONDS = 3.0
THREAD_JOIN_SECONDS = 10.0
MAX_SHARD_PAGES = 100  # DescribeStream pages (100 shards each) per poll


def describe_error(error: BaseException) -> dict[str, Any]:
    """The error's type, the first line of its message and the stack, for one log line.

    Only the first line: later lines (pydantic lists each input value there) may quote the
    message body, which can hold personal data.
    """
    first_line = (str(error).splitlines() or [""])[0][:300]
    return {"error": f"{type(error).__name__}: {first_line}",
            "stack": "".join(traceback.format_tb(error.__traceback__, limit=8))}


def log_line(level: str, message: str, **fields: Any) -> None:
    """One JSON object per line, like the app's own logs (message bodies are never logged)."""
    record = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
              "level": level, "logger": "local.worker", "message": message, **fields}
    print(json.dumps(record, ensure_ascii=False, default=str), flush=True)


def scheduled_event(rule_name: str, region: str, when: dt.datetime | None = None) -> dict[str, Any]:
    """The event EventBridge sends a scheduled Lambda."""
    when = when or dt.datetime.now(dt.timezone.utc)
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": ACCOUNT_ID, "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule_name}"], "detail": {},
    }


# ------------------------------------------------------------------------------ SQS events


def _message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    converted = {}
    for name, value in attributes.items():
        item = {"stringListValues": [], "binaryListValues": [], "dataType": value.get("DataType", "String")}
        if "StringValue" in value:
            item["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            import base64

            item["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
        converted[name] = item
    return converted


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of the SQS event Lambda's event source mapping sends."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", ""),
            "SenderId": attributes.get("SenderId", ACCOUNT_ID),
            "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", ""),
            **{k: v for k, v in attributes.items() if k in ("MessageGroupId", "MessageDeduplicationId",
                                                             "SequenceNumber", "AWSTraceHeader")},
        },
        "messageAttributes": _message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


# --------------------------------------------------------------------------------- worker


@dataclass
class Delivery:
    """What happened to one batch (or one scheduled run)."""
    source: str
    message_ids: list[str]
    ok: bool
    error: str | None = None


@dataclass
class QueueSource:
    name: str
    queue_name: str
    batch_size: int
    handler: Callable[[dict, Any], Any]
    url: str | None = None
    arn: str | None = None


@dataclass
class StreamSource:
    """One `on_dynamodb_record` handler and where it is in its table's stream."""
    name: str
    table_name: str
    batch_size: int
    starting_position: str  # for the shards present when the worker first looks (later ones: from their start)
    handler: Callable[[dict, Any], Any]
    arn: str | None = None
    iterators: dict[str, str] = field(default_factory=dict)  # open shard -> its next iterator
    # shard -> where to read again if its iterator is lost: after the last record delivered, or
    # at the first record of a batch the handler refused
    resume: dict[str, tuple[str, str]] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)  # closed shards read to their end
    seen_any: bool = False


def stream_table_name(stream_arn: str) -> str:
    """`arn:...:table/<name>/stream/<label>` -> `<name>`."""
    resource = stream_arn.split(":", 5)[-1].split("/")
    return resource[1] if len(resource) > 1 and resource[0] == "table" else ""


def dynamodb_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda's DynamoDB event carries it (the creation time as epoch seconds)."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, dt.datetime):
        change["ApproximateCreationDateTime"] = created.timestamp()
    change.setdefault("SizeBytes", 0)
    return {"eventID": record["eventID"], "eventName": record["eventName"],
            "eventVersion": record.get("eventVersion", "1.1"), "eventSource": "aws:dynamodb",
            "awsRegion": record.get("awsRegion", ""), "dynamodb": change, "eventSourceARN": stream_arn}


@dataclass
class ScheduleSource:
    name: str
    expression: str
    handler: Callable[[dict, Any], Any]
    interval_seconds: float | None = None   # rate schedules
    cron: CronSchedule | None = None        # cron schedules (None + no interval: every minute)
    notes: list[str] = field(default_factory=list)


def load_app(module_name: str = "app") -> Any:
    """The Chalice app object of `app.py` (the project root is put on sys.path)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return getattr(importlib.import_module(module_name), "app")


class Worker:
    """Delivers an app's SQS and schedule events; one thread per queue and per schedule."""

    def __init__(self, app: Any, *, sqs_client: Any = None, stage: str | None = None, region: str | None = None,
                 stream_start: str | None = None):
        from chalice.app import DynamoDBEventConfig, ScheduledEventConfig, SQSEventConfig

        self.app = app
        self.stage = stage or os.environ.get("STAGE") or "local"
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self._sqs = sqs_client
        self.queues: list[QueueSource] = []
        self.schedules: list[ScheduleSource] = []
        self.streams: list[StreamSource] = []
        self._dynamodb: Any = None
        self._dynamodb_streams: Any = None
        for config in app.event_sources:
            # handler_map holds what Lambda would call (event, context), middleware included,
            # keyed by the source's name (blueprint name prefixes applied).
            handler = app.handler_map[config.name]
            if isinstance(config, SQSEventConfig):
                queue_name = config.queue or (config.queue_arn or "").rsplit(":", 1)[-1]
                self.queues.append(QueueSource(config.name, queue_name, max(1, min(MAX_SQS_BATCH, config.batch_size)),
                                               handler))
            elif isinstance(config, ScheduledEventConfig):
                self.schedules.append(self._schedule_source(config, handler))
            elif isinstance(config, DynamoDBEventConfig):
                # stream_start="LATEST": only what happens from now on (tests on a shared engine).
                self.streams.append(StreamSource(config.name, stream_table_name(config.stream_arn),
                                                 max(1, min(1000, config.batch_size)),
                                                 stream_start or config.starting_position, handler))

    @staticmethod
    def _schedule_source(config: Any, handler: Callable) -> ScheduleSource:
        expression = expression_string(config.schedule_expression)
        source = ScheduleSource(config.name, expression, handler)
        if expression.lower().startswith("rate("):
            source.interval_seconds = parse_rate(expression)
            return source
        try:
            source.cron = CronSchedule.parse(expression)
        except ValueError:
            source.notes.append(f"cron expression {expression!r} is approximated: fired every minute")
        return source

    # -- AWS plumbing -------------------------------------------------------------------

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            import boto3
            from botocore.config import Config

            # AWS_ENDPOINT_URL_SQS (set by the local stack) is honoured by boto3 itself.
            self._sqs = boto3.client("sqs", region_name=self.region,
                                     config=Config(connect_timeout=2, read_timeout=30, retries={"max_attempts": 2}))
        return self._sqs

    def _resolve(self, queue: QueueSource) -> None:
        if queue.url is None:
            queue.url = self.sqs.get_queue_url(QueueName=queue.queue_name)["QueueUrl"]
        if queue.arn is None:
            queue.arn = self.sqs.get_queue_attributes(QueueUrl=queue.url,
                                                      AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def context(self, source_name: str, timeout_seconds: int = 60) -> Any:
        from chalice.local import LambdaContext

        return LambdaContext(function_name=f"{self.app.app_name}-{self.stage}-{source_name}", memory_size=128,
                             max_runtime_ms=timeout_seconds * 1000)

    # -- SQS ----------------------------------------------------------------------------

    def receive_and_deliver(self, queue: QueueSource, wait_seconds: int = 0) -> Delivery | None:
        """One ReceiveMessage and, if it got messages, one handler call. None when empty."""
        self._resolve(queue)
        response = self.sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=queue.batch_size,
                                            WaitTimeSeconds=wait_seconds, AttributeNames=["All"],
                                            MessageAttributeNames=["All"])
        messages = response.get("Messages", [])
        return self.deliver(queue, messages) if messages else None

    def deliver(self, queue: QueueSource, messages: list[dict[str, Any]]) -> Delivery:
        event = {"Records": [sqs_record(m, queue.arn or "", self.region) for m in messages]}
        ids = [m["MessageId"] for m in messages]
        try:
            queue.handler(event, self.context(queue.name))
        except Exception as error:  # noqa: BLE001 (a failing handler must not stop the worker)
            details = describe_error(error)
            log_line("ERROR", "sqs handler failed; messages left for retry", handler=queue.name,
                     queue=queue.queue_name, message_ids=ids,
                     receive_counts=[m.get("Attributes", {}).get("ApproximateReceiveCount") for m in messages],
                     **details)
            return Delivery(queue.name, ids, False, details["error"])
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        result = self.sqs.delete_message_batch(QueueUrl=queue.url, Entries=entries)
        for failure in result.get("Failed", []):
            log_line("WARNING", "could not delete a handled message", handler=queue.name, failure=failure)
        return Delivery(queue.name, ids, True)

    def drain_queues(self, max_batches: int = 10, wait_seconds: int = 0) -> list[Delivery]:
        """Deliver up to `max_batches` batches per queue, stopping at the first empty receive."""
        deliveries = []
        for queue in self.queues:
            for _ in range(max_batches):
                delivery = self.receive_and_deliver(queue, wait_seconds)
                if delivery is None:
                    break
                deliveries.append(delivery)
        return deliveries

    def _poll_queue(self, queue: QueueSource, stop: threading.Event, wait_seconds: int) -> None:
        failures = 0
        while not stop.is_set():
            try:
                self.receive_and_deliver(queue, wait_seconds)
                failures = 0
            except Exception as error:  # noqa: BLE001 (queue not created yet, endpoint restarting, ...)
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log_line("WARNING", "cannot receive from queue; retrying", handler=queue.name,
                             queue=queue.queue_name, error=describe_error(error)["error"], attempts=failures)
                stop.wait(RECEIVE_ERROR_BACKOFF_SECONDS)

    # -- DynamoDB streams -------------------------------------------------------------------

    def _stream_clients(self) -> tuple[Any, Any]:
        if self._dynamodb_streams is None:
            import boto3
            from botocore.config import Config

            config = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2})
            # DynamoDB Local (and moto's server) answer Streams on DynamoDB's own endpoint.
            endpoint = (os.environ.get("AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
                        or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or None)
            self._dynamodb = boto3.client("dynamodb", region_name=self.region, config=config)
            self._dynamodb_streams = boto3.client("dynamodbstreams", region_name=self.region, config=config,
                                                  endpoint_url=endpoint)
        return self._dynamodb, self._dynamodb_streams

    def _shards(self, stream: StreamSource) -> list[dict[str, Any]]:
        dynamodb, streams = self._stream_clients()
        if stream.arn is None:
            arn = dynamodb.describe_table(TableName=stream.table_name)["Table"].get("LatestStreamArn")
            if not arn:
                raise RuntimeError(f"table {stream.table_name} has no stream")
            stream.arn = arn
        shards: list[dict[str, Any]] = []
        start: str | None = None
        for _ in range(MAX_SHARD_PAGES):
            request = {"StreamArn": stream.arn, **({"ExclusiveStartShardId": start} if start else {})}
            description = streams.describe_stream(**request)["StreamDescription"]
            shards += description.get("Shards", [])
            start = description.get("LastEvaluatedShardId")
            if not start:
                break
        return shards

    def _iterator(self, stream: StreamSource, shard_id: str, first_look: bool) -> str | None:
        _, streams = self._stream_clients()
        request: dict[str, Any] = {"StreamArn": stream.arn, "ShardId": shard_id}
        if shard_id in stream.resume:
            kind, sequence = stream.resume[shard_id]
            request.update(ShardIteratorType=kind, SequenceNumber=sequence)
        else:
            request["ShardIteratorType"] = stream.starting_position if first_look else "TRIM_HORIZON"
        return streams.get_shard_iterator(**request).get("ShardIterator")

    def poll_stream(self, stream: StreamSource, max_batches: int = 10) -> list[Delivery]:
        """Read every open shard of the stream (up to `max_batches` GetRecords each) and deliver
        what it holds; a failed batch is read again next time from its first record."""
        _, streams = self._stream_clients()
        first_look = not stream.seen_any
        deliveries: list[Delivery] = []
        for shard in self._shards(stream):
            shard_id = shard["ShardId"]
            if shard_id in stream.finished:
                continue
            if shard_id not in stream.iterators:
                iterator = self._iterator(stream, shard_id, first_look)
                if iterator is None:
                    stream.finished.add(shard_id)
                    continue
                stream.iterators[shard_id] = iterator
            for _ in range(max_batches):
                answer = self._get_records(stream, shard_id)
                records = answer.get("Records", [])
                if records:
                    delivery = self._deliver_records(stream, records)
                    deliveries.append(delivery)
                    if not delivery.ok:  # read the batch again next time, as Lambda retries it
                        stream.resume[shard_id] = ("AT_SEQUENCE_NUMBER", records[0]["dynamodb"]["SequenceNumber"])
                        stream.iterators.pop(shard_id, None)
                        break
                    stream.resume[shard_id] = ("AFTER_SEQUENCE_NUMBER", records[-1]["dynamodb"]["SequenceNumber"])
                following = answer.get("NextShardIterator")
                if following is None:  # a closed shard, read to its end
                    stream.finished.add(shard_id)
                    stream.iterators.pop(shard_id, None)
                    break
                stream.iterators[shard_id] = following
                if not records:
                    break
        stream.seen_any = True
        return deliveries

    def _get_records(self, stream: StreamSource, shard_id: str) -> dict[str, Any]:
        """GetRecords at the shard's iterator. An iterator that went stale (expired, or, on DynamoDB
        Local, taken while the shard was empty: it is refused once records arrive) is taken again
        after the last record delivered, else from the shard's start: it was empty then, so what
        it holds now is all new."""
        _, streams = self._stream_clients()
        try:
            return streams.get_records(ShardIterator=stream.iterators[shard_id], Limit=stream.batch_size)
        except (streams.exceptions.TrimmedDataAccessException, streams.exceptions.ExpiredIteratorException):
            request: dict[str, Any] = {"StreamArn": stream.arn, "ShardId": shard_id, "ShardIteratorType": "TRIM_HORIZON"}
            if shard_id in stream.resume:
                kind, sequence = stream.resume[shard_id]
                request.update(ShardIteratorType=kind, SequenceNumber=sequence)
            stream.iterators[shard_id] = streams.get_shard_iterator(**request)["ShardIterator"]
            return streams.get_records(ShardIterator=stream.iterators[shard_id], Limit=stream.batch_size)

    def _deliver_records(self, stream: StreamSource, records: list[dict[str, Any]]) -> Delivery:
        event = {"Records": [dynamodb_record(record, stream.arn or "") for record in records]}
        ids = [record["eventID"] for record in records]
        try:
            stream.handler(event, self.context(stream.name))
        except Exception as error:  # noqa: BLE001 (a failing handler must not stop the worker)
            details = describe_error(error)
            log_line("ERROR", "stream handler failed; the batch will be read again", handler=stream.name,
                     table=stream.table_name, records=len(ids), **details)
            return Delivery(stream.name, ids, False, details["error"])
        return Delivery(stream.name, ids, True)

    def drain_streams(self, max_passes: int = 10) -> list[Delivery]:
        """Poll every stream until a pass delivers nothing (or `max_passes`)."""
        deliveries: list[Delivery] = []
        for _ in range(max_passes):
            delivered = [d for stream in self.streams for d in self.poll_stream(stream)]
            deliveries += delivered
            if not delivered or not all(d.ok for d in delivered):
                break
        return deliveries

    def _poll_stream_loop(self, stream: StreamSource, stop: threading.Event, pause: float) -> None:
        failures = 0
        while not stop.is_set():
            try:
                delivered = self.poll_stream(stream)
                failures = 0
            except Exception as error:  # noqa: BLE001 (table not created yet, endpoint restarting, ...)
                delivered = []
                failures += 1
                stream.iterators.clear()  # iterators expire; start again after the last record delivered
                if failures in (1, 10) or failures % 100 == 0:
                    log_line("WARNING", "cannot read stream; retrying", handler=stream.name, table=stream.table_name,
                             error=describe_error(error)["error"], attempts=failures)
                stop.wait(RECEIVE_ERROR_BACKOFF_SECONDS)
                continue
            if not delivered:
                stop.wait(pause)

    # -- schedules ------------------------------------------------------------------------

    def fire(self, schedule: ScheduleSource, when: dt.datetime | None = None) -> Delivery:
        event = scheduled_event(f"{self.app.app_name}-{self.stage}-{schedule.name}", self.region, when)
        try:
            schedule.handler(event, self.context(schedule.name))
        except Exception as error:  # noqa: BLE001
            details = describe_error(error)
            log_line("ERROR", "scheduled handler failed", handler=schedule.name, schedule=schedule.expression,
                     event_id=event["id"], **details)
            return Delivery(schedule.name, [event["id"]], False, details["error"])
        return Delivery(schedule.name, [event["id"]], True)

    def fire_schedules(self, names: list[str] | None = None) -> list[Delivery]:
        """Fire every schedule (or the named ones) once, now."""
        return [self.fire(s) for s in self.schedules if names is None or s.name in names]

    def _run_schedule(self, schedule: ScheduleSource, stop: threading.Event, scale: float) -> None:
        if schedule.interval_seconds is not None:
            interval = max(0.01, schedule.interval_seconds * scale)
            while not stop.wait(interval):  # like EventBridge: the first run one interval after start
                self.fire(schedule)
            return
        while True:  # cron: check each minute boundary (scaled for tests)
            now = dt.datetime.now(dt.timezone.utc)
            pause = (60 - now.second - now.microsecond / 1e6) * scale
            if stop.wait(max(0.01, pause)):
                return
            moment = (now + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
            if schedule.cron is None or schedule.cron.matches(moment):
                self.fire(schedule, moment)

    # -- all of it --------------------------------------------------------------------------

    def run(self, stop: threading.Event, poll_seconds: float = 2.0, schedule_scale: float = 1.0) -> None:
        """Run until `stop` is set; returns within about `poll_seconds` + THREAD_JOIN_SECONDS."""
        wait_seconds = max(0, min(20, int(round(poll_seconds))))
        threads = [threading.Thread(target=self._poll_queue, args=(q, stop, wait_seconds), name=f"sqs:{q.name}",
                                    daemon=True) for q in self.queues]
        threads += [threading.Thread(target=self._run_schedule, args=(s, stop, schedule_scale),
                                     name=f"schedule:{s.name}", daemon=True) for s in self.schedules]
        threads += [threading.Thread(target=self._poll_stream_loop, args=(s, stop, max(0.2, min(2.0, poll_seconds / 2))),
                                     name=f"stream:{s.name}", daemon=True) for s in self.streams]
        for schedule in self.schedules:
            for note in schedule.notes:
                log_line("WARNING", note, handler=schedule.name)
        log_line("INFO", "worker started", queues=[f"{q.name} <- {q.queue_name}" for q in self.queues],
                 schedules=[f"{s.name} {s.expression}" for s in self.schedules],
                 streams=[f"{s.name} <- {s.table_name}" for s in self.streams], schedule_scale=schedule_scale)
        for thread in threads:
            thread.start()
        while not stop.wait(1.0):
            pass
        for thread in threads:
            thread.join(timeout=THREAD_JOIN_SECONDS)
        log_line("INFO", "worker stopped", still_running=[t.name for t in threads if t.is_alive()])


def run_worker(stop_event: threading.Event, poll_seconds: float = 2.0, schedule_scale: float = 1.0,
               app: Any = None) -> None:
    """Poll every queue and fire every schedule of `app` (default: app.py's) until `stop_event`."""
    Worker(app if app is not None else load_app()).run(stop_event, poll_seconds, schedule_scale)


def run_once(app: Any = None, max_batches: int = 10) -> list[Delivery]:
    """One pass: drain every queue (up to `max_batches` batches each), then fire every schedule once."""
    worker = Worker(app if app is not None else load_app())
    return worker.drain_queues(max_batches) + worker.drain_streams() + worker.fire_schedules()


def drain_queues(app: Any = None, max_batches: int = 10) -> list[Delivery]:
    return Worker(app if app is not None else load_app()).drain_queues(max_batches)


# ----------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--poll-seconds", type=float, default=float(os.environ.get("WORKER_POLL_SECONDS") or 2),
                        help="SQS long-poll wait (0-20 s)")
    parser.add_argument("--schedule-scale", type=float,
                        default=float(os.environ.get("WORKER_SCHEDULE_SCALE") or 1.0),
                        help="multiply every schedule interval (0.1 = ten times faster)")
    parser.add_argument("--once", action="store_true", help="drain the queues, fire each schedule once, exit")
    args = parser.parse_args(argv)
    if args.schedule_scale <= 0:
        parser.error("--schedule-scale must be positive")
    # Standalone runs get the local stage's defaults for what the caller did not set (the
    # stack passes a complete environment, so this changes nothing there).
    apply_local_defaults(os.environ)
    app = load_app()
    if args.once:
        for delivery in run_once(app):
            log_line("INFO" if delivery.ok else "ERROR", "delivered", **vars(delivery))
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_worker(stop, poll_seconds=args.poll_seconds, schedule_scale=args.schedule_scale, app=app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
