"""Table `admins`: merchant accounts for the admin API, keyed by username."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name


class AdminRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("admins")

    username = UnicodeAttribute(hash_key=True)
    password_hash = UnicodeAttribute()
    role = UnicodeAttribute(default="owner")
    created_at = UTCDateTimeAttribute()


@dataclass(frozen=True)
class Admin:
    username: str
    password_hash: str
    role: str


def get_admin(username: str) -> Admin | None:
    try:
        record = AdminRecord.get(username, consistent_read=True)
    except AdminRecord.DoesNotExist:
        return None
    return Admin(username=record.username, password_hash=record.password_hash, role=record.role)


def create_admin_if_absent(username: str, password_hash: str, now: datetime) -> bool:
    """Create the account unless it exists (an existing password is never overwritten)."""
    record = AdminRecord(username, password_hash=password_hash, role="owner", created_at=now)
    try:
        with condition_failure_as(ConditionFailed):
            record.save(condition=AdminRecord.username.does_not_exist())
    except ConditionFailed:
        return False
    return True
