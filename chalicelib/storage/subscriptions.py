"""Table `subscriptions`: the subscribe-message quota ledger (what `wx.requestSubscribeMessage`
granted us, per user and WeChat template), and the records that make spending it exactly-once.

Items of one user (hash key `user_id`; the whole partition is personal data, erased with the
account), by sort key:
- `tmpl#<template_id>`: `remaining`, the one-time grants not spent yet. Each acceptance ADDs 1
  (WeChat gives one send per acceptance), up to MAX_REMAINING so a client cannot pile up an
  unbounded ledger.
- `grant#<request_id>`: a client's request id already counted (kept GRANT_TTL), so a retried
  `POST /v1/me/subscriptions` with the same `request_id` adds nothing. Without a request id every
  accepted call is one grant, as every acceptance in WeChat is one.
- `use#<message_key>`: a unit spent by that message (`state` consumed or returned, kept
  USE_TTL, longer than SQS keeps a message), so a redelivery never spends a second unit.

The exactly-once rule (services/notifications.py follows it):
1. Before calling WeChat, `consume` spends one unit FOR the message: one TransactWrite puts
   `use#<message_key>` (`attribute_not_exists`) and takes 1 off `remaining` (`remaining > 0`).
   Two messages racing for the last unit: one transaction wins, the other finds no quota and
   is not attempted. The ledger never goes negative.
2. A redelivered message (crash, transient WeChat failure) finds its `use#` record: the unit is
   already held for it (HELD), nothing more is taken, and it sends with that unit.
3. When WeChat did not deliver and says so for good (43101 user refused, or another permanent
   errcode), `give_back` returns the unit: `use#` moves consumed -> returned and `remaining`
   gets its 1 back, in one transaction, at most once. A later redelivery sees RETURNED and does
   not call WeChat again.
A message that WeChat may have received (a timeout) keeps its unit: counting it spent is the
safe side (at worst one message is not attempted that WeChat would have taken).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name

QUOTA_PREFIX = "tmpl#"
GRANT_PREFIX = "grant#"
USE_PREFIX = "use#"
MAX_REMAINING = 50  # no real user accepts one template 50 times between two sends
GRANT_TTL = timedelta(days=1)
USE_TTL = timedelta(days=15)  # SQS keeps a message at most 14 days
CONSUMED = "consumed"
RETURNED = "returned"


class SubscriptionRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("subscriptions")

    user_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)  # tmpl#<template_id> | grant#<request_id> | use#<message_key>
    template_id = UnicodeAttribute(null=True)
    remaining = NumberAttribute(null=True)  # tmpl# items only
    state = UnicodeAttribute(null=True)  # use# items only: consumed | returned
    updated_at = UTCDateTimeAttribute(null=True)
    expires_at = TTLAttribute(null=True)  # grant# and use# items only


class Consumption(Enum):
    CONSUMED = "consumed"  # one unit taken now for this message
    HELD = "held"  # a unit was taken for this message before (a redelivery): nothing more taken
    RETURNED = "returned"  # its unit was given back (WeChat refused it): do not send again
    NO_QUOTA = "no_quota"  # nothing to spend: nothing written


@dataclass(frozen=True)
class Quota:
    template_id: str
    remaining: int


def _connection():
    return SubscriptionRecord._get_connection().connection


def _failed(error: TransactWriteError) -> list[bool]:
    """Per action of the cancelled transaction: did its condition fail?"""
    return [bool(reason and reason.code == "ConditionalCheckFailed") for reason in error.cancellation_reasons or []]


def remaining(user_id: str, template_id: str, consistent: bool = False) -> int:
    """Units left for this template (0 when never granted). Eventually consistent by default:
    the cheap check before queueing; the spend itself is conditional."""
    try:
        record = SubscriptionRecord.get(user_id, QUOTA_PREFIX + template_id, consistent_read=consistent,
                                        attributes_to_get=["remaining"])
    except SubscriptionRecord.DoesNotExist:
        return 0
    return int(record.remaining or 0)


def list_quotas(user_id: str) -> list[Quota]:
    """Every template the user ever granted, with what is left (one Query; bounded by the few
    configured templates, which are all the API accepts)."""
    return [Quota(record.template_id, int(record.remaining or 0))
            for record in SubscriptionRecord.query(user_id, SubscriptionRecord.sk.startswith(QUOTA_PREFIX),
                                                   consistent_read=True, limit=100)]


def grant(user_id: str, template_id: str, now: datetime, request_id: str | None = None) -> int:
    """Add one unit (an acceptance); returns the units left after it. A request_id seen before,
    or a ledger at MAX_REMAINING, adds nothing (and answers the current count)."""
    quota = SubscriptionRecord(user_id, QUOTA_PREFIX + template_id)
    add = [SubscriptionRecord.remaining.add(1), SubscriptionRecord.template_id.set(template_id),
           SubscriptionRecord.updated_at.set(now)]
    below_cap = SubscriptionRecord.remaining.does_not_exist() | (SubscriptionRecord.remaining < MAX_REMAINING)
    if request_id is None:
        try:
            with condition_failure_as(ConditionFailed):
                quota.update(actions=add, condition=below_cap)
        except ConditionFailed:
            return remaining(user_id, template_id, consistent=True)
        return int(quota.remaining)
    marker = SubscriptionRecord(user_id, GRANT_PREFIX + request_id, template_id=template_id, updated_at=now,
                                expires_at=now + GRANT_TTL)
    try:
        with TransactWrite(connection=_connection()) as transaction:
            transaction.save(marker, condition=SubscriptionRecord.sk.does_not_exist())
            transaction.update(quota, actions=add, condition=below_cap)
    except TransactWriteError as error:
        if not any(_failed(error)):
            raise
    return remaining(user_id, template_id, consistent=True)


def consume(user_id: str, template_id: str, message_key: str, now: datetime) -> Consumption:
    """Spend one unit for `message_key` (rule 1 and 2 of the module docstring)."""
    marker = SubscriptionRecord(user_id, USE_PREFIX + message_key, template_id=template_id, state=CONSUMED,
                                updated_at=now, expires_at=now + USE_TTL)
    try:
        with TransactWrite(connection=_connection()) as transaction:
            transaction.save(marker, condition=SubscriptionRecord.sk.does_not_exist())
            transaction.update(SubscriptionRecord(user_id, QUOTA_PREFIX + template_id),
                               actions=[SubscriptionRecord.remaining.add(-1), SubscriptionRecord.updated_at.set(now)],
                               condition=SubscriptionRecord.remaining > 0)
    except TransactWriteError as error:
        failed = _failed(error)
        if failed[:1] == [True]:
            return _earlier_consumption(user_id, message_key)
        if failed[1:2] == [True]:
            return Consumption.NO_QUOTA
        raise
    return Consumption.CONSUMED


def _earlier_consumption(user_id: str, message_key: str) -> Consumption:
    record = SubscriptionRecord.get(user_id, USE_PREFIX + message_key, consistent_read=True)
    return Consumption.RETURNED if record.state == RETURNED else Consumption.HELD


def give_back(user_id: str, template_id: str, message_key: str, now: datetime) -> bool:
    """Return the unit `message_key` spent (WeChat did not deliver it); False when it was not
    held (never taken, or given back already): nothing written then (rule 3)."""
    try:
        with TransactWrite(connection=_connection()) as transaction:
            transaction.update(SubscriptionRecord(user_id, USE_PREFIX + message_key),
                               actions=[SubscriptionRecord.state.set(RETURNED), SubscriptionRecord.updated_at.set(now)],
                               condition=SubscriptionRecord.state == CONSUMED)
            transaction.update(SubscriptionRecord(user_id, QUOTA_PREFIX + template_id),
                               actions=[SubscriptionRecord.remaining.add(1), SubscriptionRecord.updated_at.set(now)],
                               condition=SubscriptionRecord.remaining.exists())
    except TransactWriteError as error:
        if any(_failed(error)):
            return False
        raise
    return True

