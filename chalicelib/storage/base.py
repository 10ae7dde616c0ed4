"""What every table shares: its name in this stack, region, billing, and condition failures."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

from pynamodb.exceptions import PynamoDBException
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection

from chalicelib.settings import table_prefix_from_env


def _one_botocore_session_per_thread():
    """PynamoDB gives every model's connection a botocore session of its own, and each session
    loads DynamoDB's service model again when it builds its client (~0.2 s each): a request
    touching six tables on a cold Lambda paid that six times. One session per thread (botocore
    sessions are not thread-safe; clients are) builds every model's client from one loaded
    service model."""
    import threading

    import botocore.session
    import pynamodb.connection.base as pynamodb_connection

    sessions = threading.local()

    def get_session():
        if getattr(sessions, "session", None) is None:
            sessions.session = botocore.session.get_session()
        return sessions.session

    pynamodb_connection.get_session = get_session


_one_botocore_session_per_thread()


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


class FullCopyIndex(GlobalSecondaryIndex):
    """Base of the GSIs that project every attribute (their queries answer whole items).

    Each index still needs its own subclass per model: PynamoDB binds an index class to one model.
    """
    class Meta:
        projection = AllProjection()


class KeysOnlyIndex(GlobalSecondaryIndex):
    """Base of the GSIs that project keys only: a write to the table writes the index only when
    the index's keys change, and a read of the index is followed by a BatchGetItem of the items."""
    class Meta:
        projection = KeysOnlyProjection()


class ConditionFailed(Exception):
    """A conditional write (or a transaction) was refused because its condition did not hold."""


def response_code(error: PynamoDBException) -> str | None:
    """The AWS error code behind a PynamoDB error; None when it failed below HTTP.

    (PynamoDB's own `cause_response_code` raises AttributeError for transport failures, whose
    cause carries `response = None`.)"""
    response = getattr(error.cause, "response", None) or {}
    return response.get("Error", {}).get("Code")


def is_condition_failure(error: PynamoDBException) -> bool:
    return response_code(error) == "ConditionalCheckFailedException"


@contextmanager
def condition_failure_as(exception: Exception | type[Exception] = ConditionFailed) -> Iterator[None]:
    """Turn PynamoDB's condition-check failure into a named exception; re-raise anything else."""
    try:
        yield
    except PynamoDBException as error:
        if is_condition_failure(error):
            raise exception from error
        raise


def update_if(record: Any, actions: list, condition: Any) -> bool:
    """One conditional UpdateItem on `record` (a model instance with its key); False when the
    condition failed (nothing written), any other error raised."""
    try:
        with condition_failure_as(ConditionFailed):
            record.update(actions=actions, condition=condition)
    except ConditionFailed:
        return False
    return True


# Answers that mean "try again": throttling, a busy or failing service, transaction contention.
TRANSIENT_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionConflictException",
    "TransactionInProgressException", "LimitExceededException",
})
TRANSIENT_CANCELLATIONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


def is_transient(error: BaseException) -> bool:
    """Whether an AWS failure is worth retrying (the client gets 503 + Retry-After, not a 500).

    A PynamoDB error with no response code failed below HTTP (connection refused or reset,
    timeout); a botocore transport error likewise.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(error, PynamoDBException):
        code = response_code(error)
        if code == "TransactionCanceledException":
            reasons = error.cancellation_reasons or []
            return any(reason is not None and reason.code in TRANSIENT_CANCELLATIONS for reason in reasons)
        return code is None or code in TRANSIENT_CODES
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code") in TRANSIENT_CODES
    return isinstance(error, BotoCoreError)


def version_as_read(model: Any, version: int) -> Any:
    """The condition "the item exists and nobody changed it since I read `version`" for a model
    with a nullable `version` attribute (items never edited have none: that is version 0)."""
    key = getattr(model, model._hash_keyname)
    return (model.version == version) if version else (key.exists() & model.version.does_not_exist())


def set_given(model: Any, values: dict[str, Any]) -> list:
    """SET actions for the values given (None: not given, left as it is)."""
    return [getattr(model, name).set(value) for name, value in values.items() if value is not None]
