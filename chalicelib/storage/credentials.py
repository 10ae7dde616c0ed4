"""Table `credentials`: short-lived upstream credentials shared by every Lambda (WeChat access token).

A newer credential replaces an older one only if it expires later, so two Lambdas refreshing
at once can never put back a token that is about to expire.
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.attributes import TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib import clock
from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name


class CredentialRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("credentials")

    name = UnicodeAttribute(hash_key=True)  # e.g. "wechat_access_token#<appid>"
    value = UnicodeAttribute()
    expires_at = TTLAttribute()


@dataclass(frozen=True)
class Credential:
    value: str
    expires_at: int


def get_credential(name: str) -> Credential | None:
    try:
        record = CredentialRecord.get(name, consistent_read=True)
    except CredentialRecord.DoesNotExist:
        return None
    return Credential(value=record.value, expires_at=int(record.expires_at.timestamp()))


def put_credential_if_newer(name: str, value: str, expires_at: int) -> bool:
    """Store the credential unless a later-expiring one is already stored; True if stored."""
    record = CredentialRecord(name, value=value, expires_at=clock.from_epoch(expires_at))
    try:
        with condition_failure_as(ConditionFailed):
            record.save(condition=CredentialRecord.name.does_not_exist()
                        | (CredentialRecord.expires_at < record.expires_at))
    except ConditionFailed:
        return False
    return True


def delete_credential_if_value(name: str, value: str) -> None:
    """Forget a credential WeChat rejected, unless another Lambda has already replaced it."""
    try:
        with condition_failure_as(ConditionFailed):
            CredentialRecord(name).delete(condition=CredentialRecord.value == value)
    except ConditionFailed:
        pass
