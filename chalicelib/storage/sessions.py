"""Table `sessions`: one item per issued token, so a token can be revoked before it expires.

Items expire through DynamoDB TTL on `expires_at`; reads also check the time, since TTL
deletes lazily (up to days later).
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib import clock
from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name


class SessionRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("sessions")

    session_id = UnicodeAttribute(hash_key=True)
    subject = UnicodeAttribute()  # user_id or admin username
    role = UnicodeAttribute()
    issued_at = NumberAttribute()
    expires_at = TTLAttribute()
    revoked_at = NumberAttribute(null=True)
    # WeChat's session_key, kept server-side only for decrypting wx.getUserInfo-style payloads.
    wechat_session_key = UnicodeAttribute(null=True)


@dataclass(frozen=True)
class Session:
    session_id: str
    subject: str
    role: str
    expires_at: int
    revoked: bool


def create_session(session_id: str, subject: str, role: str, issued_at: int, expires_at: int,
                   wechat_session_key: str | None = None) -> None:
    record = SessionRecord(session_id, subject=subject, role=role, issued_at=issued_at,
                           expires_at=clock.from_epoch(expires_at), wechat_session_key=wechat_session_key)
    with condition_failure_as(ConditionFailed):
        record.save(condition=SessionRecord.session_id.does_not_exist())


def get_session(session_id: str) -> Session | None:
    try:
        record = SessionRecord.get(session_id, attributes_to_get=["session_id", "subject", "role", "expires_at", "revoked_at"])
    except SessionRecord.DoesNotExist:
        return None
    return Session(session_id=record.session_id, subject=record.subject, role=record.role,
                   expires_at=int(record.expires_at.timestamp()), revoked=record.revoked_at is not None)


def revoke_session(session_id: str, now_epoch: int) -> bool:
    """Mark the session revoked; False when it was already revoked or does not exist."""
    try:
        with condition_failure_as(ConditionFailed):
            SessionRecord(session_id).update(
                actions=[SessionRecord.revoked_at.set(now_epoch)],
                condition=SessionRecord.session_id.exists() & SessionRecord.revoked_at.does_not_exist(),
            )
    except ConditionFailed:
        return False
    return True
