"""Table `rate_limits`: one item per bucket (e.g. `flash-user:<user_id>`), holding its GCRA
theoretical arrival time (domain/rate_limits.py). Items expire by TTL once idle.

Taking a token is one conditional UpdateItem, two when the bucket was idle: no read, and
concurrent requests of one user cannot both take the last token, because each write is
conditioned on the value it moves.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.domain.rate_limits import RateLimit
from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name

IDLE_EXPIRY_SECONDS = 3600


class RateLimitRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("rate_limits")

    bucket = UnicodeAttribute(hash_key=True)
    tat_ms = NumberAttribute()  # epoch milliseconds
    expires_at = TTLAttribute()


def take_token(limit: RateLimit, key: str, now: datetime) -> bool:
    """Whether one more request of `key` is allowed now (and if so, count it).

    One conditional write when the bucket is in use, two when it was idle: in a surge users
    press again and again, so in use is the common case (and the cheap one).
    """
    now_ms = int(now.timestamp() * 1000)
    bucket, tat = f"{limit.name}:{key}", RateLimitRecord.tat_ms
    expires = now + timedelta(seconds=IDLE_EXPIRY_SECONDS)
    # In use (TAT ahead of now) with room left: move TAT on by one interval. Idle or new: restart
    # from now. Losing the restart to a concurrent request makes the bucket in use: try that
    # again (three conditional writes at most).
    in_use = (_moved(limit.interval_ms, expires), (tat >= now_ms) & (tat <= now_ms + limit.tolerance_ms))
    idle = ([tat.set(now_ms + limit.interval_ms), RateLimitRecord.expires_at.set(expires)],
            RateLimitRecord.bucket.does_not_exist() | (tat < now_ms))
    return any(_update(bucket, actions, condition) for actions, condition in (in_use, idle, in_use))


def _moved(interval_ms: int, expires: datetime) -> list:
    return [RateLimitRecord.tat_ms.add(interval_ms), RateLimitRecord.expires_at.set(expires)]


def _update(bucket: str, actions: list, condition) -> bool:
    try:
        with condition_failure_as(ConditionFailed):
            RateLimitRecord(bucket).update(actions=actions, condition=condition)
    except ConditionFailed:
        return False
    return True
