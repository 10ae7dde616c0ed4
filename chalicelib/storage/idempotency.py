"""Table `idempotency`: at-most-once processing of messages and callbacks by a natural key.

Modelled on Powertools' idempotency: a key is claimed IN_PROGRESS with a lease, then marked
COMPLETED (kept until its TTL), or released on failure so a retry can claim it again. A lease
that outlives a crashed worker expires and can be taken over.

    claim(key) -> CLAIMED | ALREADY_DONE | BUSY
    run_once(key, action) -> the action's result, or DONE_BEFORE; raises Busy
"""
from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum
from typing import Callable, TypeVar

from pynamodb.attributes import TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name

IN_PROGRESS = "in_progress"
COMPLETED = "completed"


class IdempotencyRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("idempotency")

    key = UnicodeAttribute(hash_key=True)  # e.g. "notification#order_paid#o123"
    status = UnicodeAttribute()
    lease_expires_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute()


class Claim(Enum):
    CLAIMED = "claimed"
    ALREADY_DONE = "already_done"
    BUSY = "busy"  # another worker holds an unexpired lease


def claim(key: str, now: datetime, lease: timedelta, keep_for: timedelta) -> Claim:
    """Claim `key` for processing. Condition: absent, or an IN_PROGRESS lease that has expired."""
    record = IdempotencyRecord(key, status=IN_PROGRESS, lease_expires_at=now + lease, expires_at=now + keep_for)
    try:
        with condition_failure_as(ConditionFailed):
            record.save(condition=IdempotencyRecord.key.does_not_exist()
                        | ((IdempotencyRecord.status == IN_PROGRESS) & (IdempotencyRecord.lease_expires_at < now)))
        return Claim.CLAIMED
    except ConditionFailed:
        try:
            existing = IdempotencyRecord.get(key, consistent_read=True)
        except IdempotencyRecord.DoesNotExist:  # released in between: let the caller retry later
            return Claim.BUSY
        return Claim.ALREADY_DONE if existing.status == COMPLETED else Claim.BUSY


def complete(key: str) -> None:
    """Mark a claimed key done. Condition: it is ours (IN_PROGRESS)."""
    with condition_failure_as(ConditionFailed):
        IdempotencyRecord(key).update(actions=[IdempotencyRecord.status.set(COMPLETED)],
                                      condition=IdempotencyRecord.status == IN_PROGRESS)


def release(key: str) -> None:
    """Give a claimed key back after a failure, so a retry can claim it. Condition: IN_PROGRESS."""
    try:
        with condition_failure_as(ConditionFailed):
            IdempotencyRecord(key).delete(condition=IdempotencyRecord.status == IN_PROGRESS)
    except ConditionFailed:
        pass


class Busy(Exception):
    """Another worker holds the key's lease: retry later (a queue redelivers)."""


DONE_BEFORE = Claim.ALREADY_DONE
T = TypeVar("T")


def run_once(key: str, now: datetime, lease: timedelta, keep_for: timedelta, action: Callable[[], T]) -> T | Claim:
    """Run `action` at most once for `key`: its result, or DONE_BEFORE when it ran already.
    A failing action releases the key (so a retry runs it again) and re-raises. Raises Busy
    while another worker holds the lease."""
    outcome = claim(key, now, lease, keep_for)
    if outcome is Claim.ALREADY_DONE:
        return DONE_BEFORE
    if outcome is Claim.BUSY:
        raise Busy(key)
    try:
        result = action()
    except Exception:
        release(key)
        raise
    complete(key)
    return result


def existing_keys(keys: list[str]) -> set[str]:
    """Which of `keys` are recorded (a consistent BatchGetItem, in pages of 100)."""
    found: set[str] = set()
    for start in range(0, len(keys), 100):
        found.update(record.key for record in IdempotencyRecord.batch_get(keys[start:start + 100],
                                                                            consistent_read=True,
                                                                            attributes_to_get=["key"]))
    return found
