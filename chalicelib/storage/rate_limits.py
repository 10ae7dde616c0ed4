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
from chalicelib.storage.base import TableMeta, table_name, update_if

IDLE_EXPIRY_SECONDS = 3600


class RateLimitRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("rate_limits")

    bucket = UnicodeAttribute(hash_key=True)
    tat_ms = NumberAttribute()  # epoch milliseconds
    expires_at = TTLAttribute()


def take_token(limit: RateLimit, key: str, now: datetime) -> bool:
    """Whether one more request of `key` is allowed now (and if so, count it).

    One conditional write for a new bucket or one in use (the common cases in a surge), two for
    a bucket idle since its last request; a refused request costs three.
    """
    now_ms = int(now.timestamp() * 1000)
    bucket, tat = f"{limit.name}:{key}", RateLimitRecord.tat_ms
    expiry = RateLimitRecord.expires_at.set(now + timedelta(seconds=IDLE_EXPIRY_SECONDS))
    # New, or in use (TAT ahead of now) with room left: TAT moves on by one interval (from now
    # for a new bucket). Idle (TAT in the past): restart from now. Losing the restart to a
    # concurrent request makes the bucket in use: try that once more.
    new_or_in_use = ([tat.set((tat | now_ms) + limit.interval_ms), expiry],
                     RateLimitRecord.bucket.does_not_exist()
                     | ((tat >= now_ms) & (tat <= now_ms + limit.tolerance_ms)))
    idle = ([tat.set(now_ms + limit.interval_ms), expiry], tat < now_ms)
    return any(_update(bucket, actions, condition) for actions, condition in (new_or_in_use, idle, new_or_in_use))


def _update(bucket: str, actions: list, condition) -> bool:
    return update_if(RateLimitRecord(bucket), actions, condition)
