"""Table `privacy_consents`: the consent ledger, one item per consent event, never rewritten.

PIPL asks the store to be able to show what a person agreed to and when, and that a withdrawal
was honoured: one overwritten field on the user cannot. Each grant or withdrawal of a privacy
policy version is a new entry (hash `user_id`, range `entry_key` = "<UTC ISO time>#<version>#<nonce>",
so a Query of the partition reads the history in time order and two events in the same
millisecond never collide). Entries are put with `attribute_not_exists` and never updated.

The user item keeps `privacy_consent_version` / `privacy_consented_at` as the fast "current
consent" read (GET /v1/me, `require_consent`). Both are written in ONE TransactWrite with the
entry, so the current fields never disagree with the ledger's last event. (storage/users.py is
not ours to change: the user half of the transaction is built here from `UserRecord`'s own
attributes, as storage/users.py builds its birthday transaction.)
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.storage.base import ConditionFailed, TableMeta, table_name
from chalicelib.storage.users import UserRecord

GRANTED, WITHDRAWN = "granted", "withdrawn"


class ConsentRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("privacy_consents")

    user_id = UnicodeAttribute(hash_key=True)
    entry_key = UnicodeAttribute(range_key=True)  # "<UTC ISO ms>#<version>#<nonce>": time order
    version = UnicodeAttribute()
    action = UnicodeAttribute()  # GRANTED or WITHDRAWN
    at = UTCDateTimeAttribute()
    source = UnicodeAttribute()  # "consents" (POST /v1/me/consents), "profile", "login", ...
    client = UnicodeAttribute(null=True)  # e.g. the mini-program's version: what the person saw it in


@dataclass(frozen=True)
class ConsentEntry:
    entry_key: str
    version: str
    action: str
    at: datetime
    source: str
    client: str | None

    @property
    def granted(self) -> bool:
        return self.action == GRANTED


def _to_entry(record: ConsentRecord) -> ConsentEntry:
    return ConsentEntry(entry_key=record.entry_key, version=record.version, action=record.action, at=record.at,
                        source=record.source, client=record.client)


def entry_key_for(at: datetime, version: str) -> str:
    moment = at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"{moment}#{version}#{secrets.token_hex(4)}"


def record_consent(user_id: str, version: str, granted: bool, source: str, client: str | None,
                   now: datetime) -> ConsentEntry:
    """Append a consent event and set the user's current consent in the same transaction.

    Conditions: the entry is new (its key has a nonce: a clash is a bug, not a race) and the user
    exists. A grant sets version and time; a withdrawal removes both (no current consent).
    Raises ConditionFailed when the user does not exist (nothing written).
    """
    entry = ConsentRecord(user_id, entry_key_for(now, version), version=version,
                          action=GRANTED if granted else WITHDRAWN, at=now, source=source, client=client)
    if granted:
        actions = [UserRecord.privacy_consent_version.set(version), UserRecord.privacy_consented_at.set(now)]
    else:
        actions = [UserRecord.privacy_consent_version.remove(), UserRecord.privacy_consented_at.remove()]
    actions.append(UserRecord.updated_at.set(now))
    try:
        with TransactWrite(connection=ConsentRecord._get_connection().connection) as transaction:
            transaction.save(entry, condition=ConsentRecord.entry_key.does_not_exist())
            transaction.update(UserRecord(user_id), actions=actions, condition=UserRecord.user_id.exists())
    except TransactWriteError as error:
        if any(reason is not None and reason.code == "ConditionalCheckFailed"
               for reason in error.cancellation_reasons or []):
            raise ConditionFailed(f"user {user_id} does not exist") from None
        raise
    return _to_entry(entry)


def list_page(user_id: str, limit: int,
              cursor: dict[str, Any] | None) -> tuple[list[ConsentEntry], dict[str, Any] | None]:
    """A page of the user's consent history, newest first (a consistent Query of the partition)."""
    results = ConsentRecord.query(user_id, scan_index_forward=False, limit=limit, last_evaluated_key=cursor,
                                  consistent_read=True)
    return [_to_entry(record) for record in results], results.last_evaluated_key


def history(user_id: str, max_entries: int) -> list[ConsentEntry]:
    """The user's whole history, oldest first, at most `max_entries` (a bound, not a page size)."""
    entries: list[ConsentEntry] = []
    for record in ConsentRecord.query(user_id, consistent_read=True, page_size=100):
        entries.append(_to_entry(record))
        if len(entries) >= max_entries:
            break
    return entries


def delete_history(user_id: str, max_entries: int) -> int:
    """Delete up to `max_entries` of the user's entries (account deletion); how many went.
    Idempotent: a retry deletes what is left."""
    deleted = 0
    for record in ConsentRecord.query(user_id, consistent_read=True, attributes_to_get=["user_id", "entry_key"]):
        ConsentRecord(user_id, record.entry_key).delete()
        deleted += 1
        if deleted >= max_entries:
            break
    return deleted
