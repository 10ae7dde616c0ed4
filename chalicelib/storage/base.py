"""What every table shares: its name in this stack, region, billing, and condition failures."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from pynamodb.exceptions import PynamoDBException

from chalicelib.settings import table_prefix_from_env


def table_name(base: str) -> str:
    return f"{table_prefix_from_env()}{base}"


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


class TableMeta:
    """Mixed into each model's Meta. On-demand billing: a small store's traffic is spiky."""
    billing_mode = "PAY_PER_REQUEST"
    region = region()
    # Short timeouts: a Lambda behind API Gateway has 29 s in all; fail fast and let the client retry.
    connect_timeout_seconds = 2
    read_timeout_seconds = 5
    max_retry_attempts = 3


class ConditionFailed(Exception):
    """A conditional write (or a transaction) was refused because its condition did not hold."""


def is_condition_failure(error: PynamoDBException) -> bool:
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"


@contextmanager
def condition_failure_as(exception: Exception | type[Exception] = ConditionFailed) -> Iterator[None]:
    """Turn PynamoDB's condition-check failure into a named exception; re-raise anything else."""
    try:
        yield
    except PynamoDBException as error:
        if is_condition_failure(error):
            raise exception from error
        raise
