"""SQS queues of the app: their names in this stack, their dead-letter queues, and sending.

Each queue has a dead-letter queue; a message that fails `max_receive_count` times moves there
instead of blocking the queue or being lost. boto3 is imported on first use, so routes that
never enqueue do not pay for it at cold start.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from chalicelib.settings import table_prefix_from_env


MAX_DELAY_SECONDS = 900  # SQS's limit


@dataclass(frozen=True)
class QueueSpec:
    base: str
    visibility_timeout_seconds: int = 60
    max_receive_count: int = 5

    @property
    def name(self) -> str:
        return f"{table_prefix_from_env()}{self.base}"

    @property
    def dead_letter_name(self) -> str:
        return f"{self.name}-dlq"


# Subscribe messages to users (order paid, shipped, ...), sent by a worker so a slow WeChat
# never slows a request.
NOTIFICATIONS = QueueSpec("notifications")

# What follows the placing of an order, off the request: one delayed message per unpaid order,
# due at its payment deadline (SQS delays at most 15 minutes, so a longer wait is re-queued in
# steps; a scheduled sweep is the safety net), and the low-stock check of the SKUs it took from.
ORDER_TIMERS = QueueSpec("order-timers")

# One message per order whose shipping info WeChat must be told (services/shipping_info.py);
# transient WeChat refusals are retried by redelivery, then dead-lettered and re-queued by a sweep.
SHIPPING_UPLOADS = QueueSpec("shipping-uploads")

# Accepted flash-sale entries (one message per ticket), drained by a consumer whose reserved
# concurrency caps the write rate on the sale's items; a poison message is dead-lettered.
FLASH_ENTRIES = QueueSpec("flash-entries")

ALL_QUEUES: tuple[QueueSpec, ...] = (NOTIFICATIONS, ORDER_TIMERS, SHIPPING_UPLOADS, FLASH_ENTRIES)


@functools.lru_cache(maxsize=1)
def _client() -> Any:
    import boto3

    return boto3.client("sqs")


@functools.lru_cache(maxsize=None)
def queue_url(spec_name: str) -> str:
    return _client().get_queue_url(QueueName=spec_name)["QueueUrl"]


def send_message(spec: QueueSpec, body: dict[str, Any], delay_seconds: int = 0) -> str:
    """Enqueue one JSON message; returns its SQS message id."""
    response = _client().send_message(QueueUrl=queue_url(spec.name), MessageBody=json.dumps(body, ensure_ascii=False),
                                      DelaySeconds=max(0, min(MAX_DELAY_SECONDS, int(delay_seconds))))
    return response["MessageId"]


def send_messages(spec: QueueSpec, messages: list[tuple[dict[str, Any], int]]) -> None:
    """Enqueue up to 10 JSON messages (body, delay in seconds) in ONE SendMessageBatch; raises
    when SQS refused any of them (the caller's fallbacks are the same as for one message)."""
    if not messages:
        return
    entries = [{"Id": str(index), "MessageBody": json.dumps(body, ensure_ascii=False),
                "DelaySeconds": max(0, min(MAX_DELAY_SECONDS, int(delay)))}
               for index, (body, delay) in enumerate(messages)]
    response = _client().send_message_batch(QueueUrl=queue_url(spec.name), Entries=entries)
    if response.get("Failed"):
        raise RuntimeError(f"SQS refused {len(response['Failed'])} of {len(entries)} messages: {response['Failed']}")


def create_all_queues() -> list[str]:
    """Create every queue and its dead-letter queue (idempotent); returns the queue URLs."""
    client = _client()
    urls = []
    for spec in ALL_QUEUES:
        dlq_url = client.create_queue(QueueName=spec.dead_letter_name,
                                      Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)})["QueueUrl"]
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(spec.max_receive_count)})
        urls.append(client.create_queue(QueueName=spec.name, Attributes={
            "VisibilityTimeout": str(spec.visibility_timeout_seconds), "RedrivePolicy": redrive})["QueueUrl"])
    return urls


def reset_clients() -> None:
    _client.cache_clear()
    queue_url.cache_clear()
