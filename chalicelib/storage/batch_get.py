"""One BatchGetItem across tables: the checkout and the cart read SKUs, products, the address
and the coupon wallet in a single call (DynamoDB's BatchGetItem names its tables per request).

Pages of 100 keys (DynamoDB's limit); keys the engine leaves unprocessed are asked again with a
short backoff, a bounded number of times, then the read fails as PynamoDB's own batch_get does
(GetError: the client gets 503 + Retry-After). Eventually consistent, like every read that only
proposes: the writes that follow condition on the items themselves.
"""
from __future__ import annotations

import time
from typing import Any, Iterable

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import GetError
from pynamodb.models import Model

BATCH_GET_MAX_KEYS = 100
UNPROCESSED_RETRIES = 5

Key = tuple[str, dict[str, Any]]  # (table name, key in DynamoDB's JSON)


def table_key(model: type[Model], hash_key: str, range_key: str | None = None) -> Key:
    """The (table, key) of one item of `model`, for batch_get_raw."""
    key = {model._hash_key_attribute().attr_name: {"S": hash_key}}
    if range_key is not None:
        key[model._range_key_attribute().attr_name] = {"S": range_key}
    return model.Meta.table_name, key


def batch_get_raw(keys: Iterable[Key], connection: Any, consistent: bool = False) -> dict[str, list[dict[str, Any]]]:
    """The items found, as DynamoDB returns them, by table name (every asked table present);
    `consistent` asks every table for strongly consistent reads."""
    wanted = list(keys)
    items: dict[str, list[dict[str, Any]]] = {table: [] for table, _ in wanted}
    for start in range(0, len(wanted), BATCH_GET_MAX_KEYS):
        request: dict[str, Any] = {}
        for table, key in wanted[start:start + BATCH_GET_MAX_KEYS]:
            request.setdefault(table, {"Keys": [], **({"ConsistentRead": True} if consistent else {})})["Keys"].append(key)
        for attempt in range(UNPROCESSED_RETRIES + 1):
            try:
                answer = connection.dispatch("BatchGetItem", {"RequestItems": request})
            except (BotoCoreError, ClientError) as error:  # as PynamoDB's own batch_get raises it
                raise GetError("Failed to batch get items", error) from error
            for table, table_items in answer.get("Responses", {}).items():
                items.setdefault(table, []).extend(table_items)
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
            if attempt < UNPROCESSED_RETRIES:
                time.sleep(0.025 * 2 ** attempt)
        if request:
            raise GetError("BatchGetItem left keys unprocessed after retries")
    return items
