"""Small helpers for API tests on Chalice's test client."""
from __future__ import annotations

import contextlib
import json
from typing import Any, Iterator


def call(client, method: str, path: str, body: Any = None, token: str | None = None,
         raw: bytes | str | None = None, headers: dict[str, str] | None = None):
    """One HTTP call through the test client; returns (status, parsed JSON or None, headers)."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
    response = getattr(client.http, method.lower())(path, headers=all_headers, body=payload)
    parsed = json.loads(response.body) if response.body else None
    return response.status_code, parsed, response.headers


def log_in(client, code: str = "alice-1") -> tuple[str, dict]:
    status, body, _ = call(client, "POST", "/v1/auth/login", {"code": code})
    assert status == 200, body
    return body["token"], body["user"]


def assert_envelope(body: dict, code: str | None = None) -> None:
    assert set(body) == {"Code", "Message", "Details"}, body
    assert isinstance(body["Message"], str) and body["Message"]
    assert isinstance(body["Details"], list)
    if code is not None:
        assert body["Code"] == code, body


def sim_call(simulator, method: str, path: str, body: Any = None) -> Any:
    """Drive the WeChat simulator's dev endpoints over HTTP, as a person would."""
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{simulator.base_url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    # As long as the simulator may wait for a notify's delivery ("wait": true waits up to 30 s): a
    # slow moment of this machine must not read as a failure of what the test checks.
    with urllib.request.urlopen(request, timeout=35) as response:
        return json.loads(response.read() or b"null")


def sim_fault(simulator, endpoint: str, **fault: Any) -> None:
    sim_call(simulator, "POST", "/__sim/faults", {"endpoint": endpoint, **fault})


def sim_session_keys(simulator) -> list[str]:
    items = sim_call(simulator, "GET", "/__sim/session-keys")["items"]
    return [item["session_key"] if isinstance(item, dict) else item for item in items]


def admin_token(client) -> str:
    """Create the first admin (as `make tables` does) and log in as them."""
    from chalicelib.services.auth import ensure_first_admin
    from tests.conftest import TEST_ENV

    ensure_first_admin()
    status, body, _ = call(client, "POST", "/v1/admin/auth/login",
                           {"username": TEST_ENV["ADMIN_USERNAME"], "password": TEST_ENV["ADMIN_PASSWORD"]})
    assert status == 200, body
    return body["token"]


@contextlib.contextmanager
def json_log_lines() -> Iterator[list[dict]]:
    """The log lines chalicelib.log formats (request context included), parsed, as they are emitted."""
    import io
    import logging

    from chalicelib.log import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    lines: list[dict] = []
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines() if line)


def place_pickup_order(client, token: str, sku_id: str = "sku-fuji-5", quantity: int = 1) -> dict:
    """A pickup order of the demo store, placed through the API (201 asserted)."""
    import uuid

    status, order, _ = call(client, "POST", "/v1/orders", {
        "items": [{"sku_id": sku_id, "quantity": quantity}], "delivery_method": "pickup",
        "store_id": "store-xuhui", "checkout_token": uuid.uuid4().hex}, token=token)
    assert status == 201, order
    return order


def run_order_queue(client) -> int:
    """Deliver the order-timers messages that are due now (the low-stock checks after an order;
    delayed pay-deadline timers stay queued) to their Lambda, as SQS would; returns how many."""
    from chalicelib import queues

    sqs, url = queues._client(), queues.queue_url(queues.ORDER_TIMERS.name)
    delivered = 0
    for _ in range(10):  # bounded: a test queues a handful
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        event = client.events.generate_sqs_event(message_bodies=[message["Body"] for message in messages],
                                                 queue_name=queues.ORDER_TIMERS.name)
        client.lambda_.invoke("fire_order_timers", event)
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        delivered += len(messages)
    return delivered
