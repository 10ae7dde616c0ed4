"""Counting DynamoDB calls by operation (for tests that pin how many calls a request costs)."""
from __future__ import annotations

import contextlib
from collections import Counter
from typing import Iterator

from chalicelib.storage import schema


@contextlib.contextmanager
def dynamodb_calls() -> Iterator[Counter]:
    """DynamoDB calls by operation, from every model's client, while the block runs."""
    calls: Counter = Counter()
    clients = {id(c): c for c in (m._get_connection().connection.client for m in schema.ALL_MODELS)}

    def count(model, **_):
        calls[model.name] += 1

    for client in clients.values():
        client.meta.events.register("before-call.dynamodb", count)
    try:
        yield calls
    finally:
        for client in clients.values():
            client.meta.events.unregister("before-call.dynamodb", count)
