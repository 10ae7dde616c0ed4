"""Table `admins`: merchant accounts for the admin API, keyed by username."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from chalicelib.storage.base import (ConditionFailed, TableMeta, condition_failure_as, set_given, table_name,
                                     version_as_read)


class AdminRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("admins")

    username = UnicodeAttribute(hash_key=True)
    password_hash = UnicodeAttribute()
    role = UnicodeAttribute(default="owner")  # "owner" or "staff"
    created_at = UTCDateTimeAttribute()
    disabled = BooleanAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)
    version = NumberAttribute(null=True)  # bumped by every change: updates are conditioned on it


@dataclass(frozen=True)
class Admin:
    username: str
    password_hash: str
    role: str
    disabled: bool = False
    created_at: datetime | None = None
    version: int = 0


class AdminExists(Exception):
    """An account with this username exists already."""


class AdminChanged(Exception):
    """The account changed (or vanished) since it was read."""


def _to_admin(record: AdminRecord) -> Admin:
    return Admin(username=record.username, password_hash=record.password_hash, role=record.role or "owner",
                 disabled=bool(record.disabled), created_at=record.created_at, version=int(record.version or 0))


def get_admin(username: str) -> Admin | None:
    try:
        record = AdminRecord.get(username, consistent_read=True)
    except AdminRecord.DoesNotExist:
        return None
    return _to_admin(record)


def list_admins() -> list[Admin]:
    """Every account: one Scan of a table holding a handful of merchant accounts."""
    return sorted((_to_admin(record) for record in AdminRecord.scan()), key=lambda admin: admin.username)


def create_admin(username: str, password_hash: str, role: str, now: datetime) -> Admin:
    """A new account (condition: the username is free; AdminExists otherwise)."""
    record = AdminRecord(username, password_hash=password_hash, role=role, created_at=now, version=1)
    try:
        with condition_failure_as(ConditionFailed):
            record.save(condition=AdminRecord.username.does_not_exist())
    except ConditionFailed:
        raise AdminExists(username) from None
    return _to_admin(record)


def update_admin(current: Admin, now: datetime, *, role: str | None = None, password_hash: str | None = None,
                 disabled: bool | None = None) -> Admin:
    """Change an account as read (condition: its version is the one read; AdminChanged otherwise)."""
    actions = [AdminRecord.updated_at.set(now), AdminRecord.version.set(current.version + 1),
               *set_given(AdminRecord, {"role": role, "password_hash": password_hash, "disabled": disabled})]
    record = AdminRecord(current.username)
    try:
        with condition_failure_as(ConditionFailed):
            record.update(actions=actions, condition=version_as_read(AdminRecord, current.version))
    except ConditionFailed:
        raise AdminChanged(current.username) from None
    return _to_admin(record)


def create_admin_if_absent(username: str, password_hash: str, now: datetime) -> bool:
    """Create the account unless it exists (an existing password is never overwritten)."""
    record = AdminRecord(username, password_hash=password_hash, role="owner", created_at=now)
    try:
        with condition_failure_as(ConditionFailed):
            record.save(condition=AdminRecord.username.does_not_exist())
    except ConditionFailed:
        return False
    return True
