"""Table `audit_log`: one item per admin write, append-only and kept for good (no TTL).

Key: partition `stream` ("all": an admin's write rate is far below a partition's ~1,000 writes/s)
and sort key `audit_id` ("<UTC time, microseconds>-<random>", so the key order is time order and
two entries never collide). Each item is put once (condition: new) and never updated or deleted.
Indexes (whole copies: items never change, so each is written once): `by_actor` (actor,
audit_id) and `by_target` (target, audit_id), for "what did this person do" and "what happened to
this order", newest first.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from chalicelib.storage.base import ConditionFailed, FullCopyIndex, TableMeta, condition_failure_as, table_name

STREAM = "all"


class ByActor(FullCopyIndex):
    class Meta(FullCopyIndex.Meta):
        index_name = "by_actor"

    actor = UnicodeAttribute(hash_key=True)
    audit_id = UnicodeAttribute(range_key=True)


class ByTarget(FullCopyIndex):
    class Meta(FullCopyIndex.Meta):
        index_name = "by_target"

    target = UnicodeAttribute(hash_key=True)
    audit_id = UnicodeAttribute(range_key=True)


class AuditRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("audit_log")

    stream = UnicodeAttribute(hash_key=True)
    audit_id = UnicodeAttribute(range_key=True)
    at = UTCDateTimeAttribute()
    actor = UnicodeAttribute()
    role = UnicodeAttribute()
    action = UnicodeAttribute()
    target = UnicodeAttribute()
    before = UnicodeAttribute(null=True)  # JSON text, as the API showed it (or as the service noted it)
    after = UnicodeAttribute(null=True)
    request_id = UnicodeAttribute(null=True)

    by_actor = ByActor()
    by_target = ByTarget()


@dataclass(frozen=True)
class AuditEntry:
    audit_id: str
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    before: str | None = None
    after: str | None = None
    request_id: str | None = None


def new_audit_id(at: datetime) -> str:
    return f"{at.strftime('%Y%m%dT%H%M%S%fZ')}-{secrets.token_hex(4)}"


def put_entry(entry: AuditEntry) -> None:
    record = AuditRecord(STREAM, entry.audit_id, at=entry.at, actor=entry.actor, role=entry.role, action=entry.action,
                         target=entry.target, before=entry.before, after=entry.after, request_id=entry.request_id)
    with condition_failure_as(ConditionFailed):
        record.save(condition=AuditRecord.audit_id.does_not_exist())


def _to_entry(record: AuditRecord) -> AuditEntry:
    return AuditEntry(audit_id=record.audit_id, at=record.at, actor=record.actor, role=record.role,
                      action=record.action, target=record.target, before=record.before, after=record.after,
                      request_id=record.request_id)


def list_entries(actor: str | None, target: str | None, limit: int,
                 cursor: dict[str, Any] | None) -> tuple[list[AuditEntry], dict[str, Any] | None]:
    """Newest first: by target (and actor, filtered), by actor, or all. One Query."""
    if target:
        results = AuditRecord.by_target.query(
            target, scan_index_forward=False, limit=limit, last_evaluated_key=cursor,
            filter_condition=(AuditRecord.actor == actor) if actor else None)
    elif actor:
        results = AuditRecord.by_actor.query(actor, scan_index_forward=False, limit=limit, last_evaluated_key=cursor)
    else:
        results = AuditRecord.query(STREAM, scan_index_forward=False, limit=limit, last_evaluated_key=cursor)
    page = [_to_entry(record) for record in results]
    return page, results.last_evaluated_key
