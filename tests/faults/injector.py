"""Fault injection on DynamoDB, as a botocore event hook on the app's own clients.

Kinds of fault, chosen at random (seeded, so a failure can be replayed):
- `throttled`: the request is answered 400 ProvisionedThroughputExceededException without
  reaching the engine (botocore's retry policy then retries it, as in production);
- `refused`: the connection drops before the request is sent (nothing applied);
- `lost`: the request IS applied by the engine but its answer is lost on the way back
  (the caller sees an error for something that happened: the hardest case for idempotency).
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_kwargs):
        yield self._body


@dataclass
class DynamoFaults:
    rate: float
    seed: int = 7
    kinds: tuple[str, ...] = ("throttled", "refused", "lost")
    injected: dict[str, int] = field(default_factory=dict)
    calls: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._clients: list = []
        self._lost: set[int] = set()

    def _roll(self) -> str | None:
        with self._lock:
            self.calls += 1
            if self._random.random() >= self.rate:
                return None
            kind = self._random.choice(self.kinds)
            self.injected[kind] = self.injected.get(kind, 0) + 1
            return kind

    def _before_send(self, request, **_kwargs):
        kind = self._roll()
        if kind == "throttled":
            body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"injected"}'
            return AWSResponse(request.url, 400, {"x-amzn-ErrorType": "ProvisionedThroughputExceededException"}, _Raw(body))
        if kind == "refused":
            raise ConnectionClosedError(endpoint_url=request.url)
        if kind == "lost":
            with self._lock:
                self._lost.add(id(request))
        return None

    def _after_call(self, http_response=None, parsed=None, model=None, **_kwargs):
        with self._lock:
            lost = bool(self._lost)
            self._lost.clear()
        if lost:
            raise ReadTimeoutError(endpoint_url="dynamodb (injected: answer lost)")

    def attach(self, models) -> "DynamoFaults":
        seen = set()
        for model in models:
            client = model._get_connection().connection.client
            if id(client) in seen:
                continue
            seen.add(id(client))
            client.meta.events.register("before-send.dynamodb", self._before_send)
            client.meta.events.register("after-call.dynamodb", self._after_call)
            self._clients.append(client)
        return self

    def detach(self) -> None:
        for client in self._clients:
            client.meta.events.unregister("before-send.dynamodb", self._before_send)
            client.meta.events.unregister("after-call.dynamodb", self._after_call)
        self._clients.clear()

    def __enter__(self) -> "DynamoFaults":
        return self

    def __exit__(self, *exc) -> None:
        self.detach()
