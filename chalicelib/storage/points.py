"""Tables `points_accounts`, `points_ledger` and `points_expiry`: lots, the ledger, and which
accounts hold a lot expiring on a given day.

`points_accounts`, one item per user: `balance` (the sum of the lots) and one top-level number
per lot, `lot_<YYYY-MM-DD>` (its expiry day). Top-level, so a change is `ADD` (which creates the
item and the attribute when missing) and earning or giving points back is an unconditional
write that never conflicts with anything; taking points is conditioned on each lot it takes
from (`lot >= n`), so two orders spending the same points cannot both succeed and no lot (nor
the balance) goes below zero. Plus `last_sign_in` / `streak` for the daily sign-in.

`points_ledger`, append-only, one item per business event, keyed by the event itself
(`redeem#<order_id>`, `sign_in#<date>`, `earn#<order_id>`, `refund#<out_refund_no>`, ...) and
written with `attribute_not_exists`: in the same transaction as the account change, so each
event changes the balance exactly once, and balance == the sum of the entries' deltas. The local
index `by_at` lists them newest first (strongly consistent when asked).

`points_expiry`: a marker (expiry day, user) written with every change that adds points to a
lot, so the daily expiry job Queries the month-ends that passed (domain.points.recent_expiry_days)
instead of scanning accounts; it re-reads each account (consistently) before expiring anything,
and deletes a marker only in a transaction that sees the lot gone (removing it, or checking it
is absent), so points put back into a lot are never left without their marker.

Every write here is a raw DynamoDB Update (`PointsChange.updates`), so the order's own
transactions (storage/transactions.py ExtraUpdate) can carry it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Iterator

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, LocalSecondaryIndex
from pynamodb.models import Model

from chalicelib.domain.points import Account, Parts
from chalicelib.storage.base import TableMeta, table_name

LOT_PREFIX = "lot_"
_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


class PointsAccountRecord(Model):
    """Lots are dynamic top-level attributes (`lot_<date>`): read raw (`account_from_item`)."""
    class Meta(TableMeta):
        table_name = table_name("points_accounts")

    user_id = UnicodeAttribute(hash_key=True)
    balance = NumberAttribute(default=0)
    last_sign_in = UnicodeAttribute(null=True)  # ISO date, Asia/Shanghai
    streak = NumberAttribute(default=0)


class ByAt(LocalSecondaryIndex):
    class Meta:
        index_name = "by_at"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    at_ms = NumberAttribute(range_key=True)


class PointsEntryRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("points_ledger")

    user_id = UnicodeAttribute(hash_key=True)
    entry_key = UnicodeAttribute(range_key=True)  # the business event: kind#reference
    at_ms = NumberAttribute()
    kind = UnicodeAttribute()
    delta = NumberAttribute()
    ref = UnicodeAttribute()
    detail = MapAttribute(default=dict)  # lots touched ({expiry day: points}), points lost to expiry, ...

    by_at = ByAt()


class PointsExpiryRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("points_expiry")

    expires_on = UnicodeAttribute(hash_key=True)  # ISO date
    user_id = UnicodeAttribute(range_key=True)
    at_ms = NumberAttribute(null=True)


@dataclass(frozen=True)
class Entry:
    entry_key: str
    kind: str
    delta: int
    ref: str
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PointsChange:
    """One business event's writes: the account (lots and balance), its ledger entry, and the
    expiry markers of lots it adds to. `updates` are raw Update requests, for one transaction."""
    user_id: str
    entry: Entry
    deltas: Parts  # per lot: positive adds, negative takes (conditioned on the lot holding that many)
    sign_in: tuple[date, int, date | None] | None = None  # (today, new streak, last sign-in as read)

    def account_update(self) -> dict[str, Any]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {":total": _serialize(sum(self.deltas.values()))}
        adds, conditions, sets = ["balance :total"], [], []
        for index, (expires_on, points) in enumerate(sorted(self.deltas.items())):
            names[f"#l{index}"] = lot_attribute(expires_on)
            values[f":d{index}"] = _serialize(points)
            adds.append(f"#l{index} :d{index}")
            if points < 0:
                values[f":n{index}"] = _serialize(-points)
                conditions.append(f"#l{index} >= :n{index}")
        if self.sign_in is not None:
            today, streak, seen = self.sign_in
            sets += ["last_sign_in = :today", "streak = :streak"]
            values[":today"], values[":streak"] = _serialize(today.isoformat()), _serialize(streak)
            if seen is None:
                conditions.append("attribute_not_exists(last_sign_in)")
            else:
                values[":seen"] = _serialize(seen.isoformat())
                conditions.append("last_sign_in = :seen")
        expression = "ADD " + ", ".join(adds) + (" SET " + ", ".join(sets) if sets else "")
        request = {"TableName": PointsAccountRecord.Meta.table_name, "Key": {"user_id": {"S": self.user_id}},
                   "UpdateExpression": expression, "ExpressionAttributeValues": values}
        if names:
            request["ExpressionAttributeNames"] = names
        if conditions:
            request["ConditionExpression"] = " AND ".join(conditions)
        return request

    def entry_update(self) -> dict[str, Any]:
        entry = self.entry
        detail = {"lots": {day.isoformat(): points for day, points in sorted(self.deltas.items())}, **entry.detail}
        return {"TableName": PointsEntryRecord.Meta.table_name,
                "Key": {"user_id": {"S": self.user_id}, "entry_key": {"S": entry.entry_key}},
                "UpdateExpression": "SET at_ms = :at, kind = :kind, delta = :delta, #ref = :ref, detail = :detail",
                "ConditionExpression": "attribute_not_exists(user_id)",
                "ExpressionAttributeNames": {"#ref": "ref"},
                "ExpressionAttributeValues": {":at": _serialize(int(entry.at.timestamp() * 1000)),
                                              ":kind": _serialize(entry.kind), ":delta": _serialize(entry.delta),
                                              ":ref": _serialize(entry.ref), ":detail": _serialize(detail)}}

    def marker_updates(self) -> list[dict[str, Any]]:
        at = _serialize(int(self.entry.at.timestamp() * 1000))
        return [{"TableName": PointsExpiryRecord.Meta.table_name,
                 "Key": {"expires_on": {"S": expires_on.isoformat()}, "user_id": {"S": self.user_id}},
                 "UpdateExpression": "SET at_ms = :at", "ExpressionAttributeValues": {":at": at}}
                for expires_on, points in sorted(self.deltas.items()) if points > 0]

    @property
    def updates(self) -> list[dict[str, Any]]:
        """Account first, then the entry, then the markers (the positions transactions map failures by)."""
        return [self.account_update(), self.entry_update(), *self.marker_updates()]


def lot_attribute(expires_on: date) -> str:
    return f"{LOT_PREFIX}{expires_on.isoformat()}"


def account_key(user_id: str) -> tuple[str, dict[str, Any]]:
    """(table, key) of the account, for a BatchGetItem spanning tables (storage/batch_get.py)."""
    return PointsAccountRecord.Meta.table_name, {"user_id": {"S": user_id}}


def account_from_item(user_id: str, item: dict[str, Any] | None) -> Account:
    """The account from a raw DynamoDB item (None: a user who never had points)."""
    if not item:
        return Account(user_id)
    lots = {date.fromisoformat(name[len(LOT_PREFIX):]): int(_deserialize(value))
            for name, value in item.items() if name.startswith(LOT_PREFIX)}
    last = item.get("last_sign_in")
    return Account(user_id, lots=lots, last_sign_in=date.fromisoformat(_deserialize(last)) if last else None,
                   streak=int(_deserialize(item["streak"])) if "streak" in item else 0)


def get_account(user_id: str, consistent: bool = True) -> Account:
    answer = _client().get_item(TableName=PointsAccountRecord.Meta.table_name, Key={"user_id": {"S": user_id}},
                                ConsistentRead=consistent)
    return account_from_item(user_id, answer.get("Item"))


class TransactionCanceled(Exception):
    """A points transaction was refused: a condition failed (the event was applied before, or
    the lots moved since they were read) or it collided with another transaction. Callers read
    again and decide again."""

    def __init__(self, codes: list[str | None]):
        super().__init__(", ".join(str(code) for code in codes))
        self.codes = codes


def apply(change: PointsChange) -> None:
    """The change alone, in one transaction. Raises TransactionCanceled."""
    _transact([{"Update": update} for update in change.updates])


def _transact(items: list[dict[str, Any]]) -> None:
    try:
        _client().transact_write_items(TransactItems=items)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            raise
        reasons = error.response.get("CancellationReasons") or []
        raise TransactionCanceled([reason.get("Code") for reason in reasons]) from None


def get_entry(user_id: str, entry_key: str) -> Entry | None:
    try:
        record = PointsEntryRecord.get(user_id, entry_key, consistent_read=True)
    except PointsEntryRecord.DoesNotExist:
        return None
    return _entry(record)


def list_entries(user_id: str, limit: int, before_ms: int | None = None) -> list[Entry]:
    """Newest first, at most `limit`; `before_ms` continues a page."""
    condition = PointsEntryRecord.at_ms < before_ms if before_ms is not None else None
    records = PointsEntryRecord.by_at.query(user_id, range_key_condition=condition, scan_index_forward=False,
                                            limit=limit, consistent_read=True)
    return [_entry(record) for record in records]


def _entry(record: PointsEntryRecord) -> Entry:
    from chalicelib import clock

    return Entry(entry_key=record.entry_key, kind=record.kind, delta=int(record.delta), ref=record.ref,
                 at=clock.from_epoch(record.at_ms / 1000), detail=_plain(record.detail))


def _plain(detail: Any) -> dict[str, Any]:
    value = detail.as_dict() if hasattr(detail, "as_dict") else dict(detail or {})
    return {key: (int(item) if isinstance(item, float) and item.is_integer() else item) for key, item in value.items()}


def users_with_lots_expiring(expires_on: date, page_size: int = 100) -> Iterator[str]:
    """Users marked as holding a lot that expires on that day (a base-table Query: consistent),
    every one of them, read a page at a time as the caller goes on (it stops when it wants)."""
    for record in PointsExpiryRecord.query(expires_on.isoformat(), page_size=page_size, consistent_read=True):
        yield record.user_id


def expire_lot(user_id: str, expires_on: date, seen_points: int, change: PointsChange | None) -> None:
    """Remove the lot (conditioned on it holding what was read) with its ledger entry and its
    marker, in one transaction: a give-back landing after it writes the lot and the marker
    again (the next run expires those points), one landing before it fails the condition.
    Raises TransactionCanceled if the lot moved meanwhile."""
    name = lot_attribute(expires_on)
    remove = {"TableName": PointsAccountRecord.Meta.table_name, "Key": {"user_id": {"S": user_id}},
              "UpdateExpression": "REMOVE #lot ADD balance :minus", "ConditionExpression": "#lot = :seen",
              "ExpressionAttributeNames": {"#lot": name},
              "ExpressionAttributeValues": {":seen": _serialize(seen_points), ":minus": _serialize(-seen_points)}}
    items = [{"Update": remove}]
    if change is not None:
        items.append({"Update": change.entry_update()})
    items.append({"Delete": _marker_key(user_id, expires_on)})
    _transact(items)


def forget_marker(user_id: str, expires_on: date) -> None:
    """Delete the marker, conditioned on the account holding no such lot (checked in the same
    transaction: a give-back writing the lot and the marker meanwhile keeps its marker).
    Raises TransactionCanceled if the lot is there."""
    _transact([{"ConditionCheck": {"TableName": PointsAccountRecord.Meta.table_name,
                                   "Key": {"user_id": {"S": user_id}},
                                   "ConditionExpression": "attribute_not_exists(#lot)",
                                   "ExpressionAttributeNames": {"#lot": lot_attribute(expires_on)}}},
               {"Delete": _marker_key(user_id, expires_on)}])


def _marker_key(user_id: str, expires_on: date) -> dict[str, Any]:
    return {"TableName": PointsExpiryRecord.Meta.table_name,
            "Key": {"expires_on": {"S": expires_on.isoformat()}, "user_id": {"S": user_id}}}


def erase(user_id: str, max_entries: int) -> int:
    """PIPL deletion: the user's expiry markers, ledger entries (up to `max_entries`; a retried
    deletion takes the rest) and account; how many items. The points are forfeited with the account."""
    account = get_account(user_id)
    for expires_on in account.lots:
        _client().delete_item(**_marker_key(user_id, expires_on))
    deleted = 0
    for record in PointsEntryRecord.query(user_id, consistent_read=True, attributes_to_get=["entry_key"], page_size=100):
        if deleted >= max_entries:
            return deleted
        _client().delete_item(TableName=PointsEntryRecord.Meta.table_name,
                              Key={"user_id": {"S": user_id}, "entry_key": {"S": record.entry_key}})
        deleted += 1
    _client().delete_item(TableName=PointsAccountRecord.Meta.table_name, Key={"user_id": {"S": user_id}})
    return deleted + 1


def _client():
    return PointsAccountRecord._get_connection().connection.client
