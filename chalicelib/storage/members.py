"""Tables `member_spend` (what each member spent, per day) and `store_settings` (the member
level rules the merchant edits).

`member_spend`, one item per user: `lifetime_fen` and one top-level number per Asia/Shanghai
day, `d_<YYYY-MM-DD>`. A completed order ADDs what it kept (paid less refunded) to both, a refund
after completion ADDs minus its amount (to the day the completion counted on, so a window counts
the net spend of its days). ADD creates what is missing, so the change is one unconditional
Update inside the completion's or the refund's own transaction (storage/transactions.py ExtraUpdate): exactly once per event, never a conflict. The
nightly job removes days no window reaches (domain.members.oldest_day_kept).

`store_settings`, one item per setting (`member_levels`: the rules as JSON), versioned: an edit is
conditioned on the version it was read at, so two merchants editing at once cannot lose one edit.
"""
from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from chalicelib.domain.members import DEFAULT_RULES, LevelRule, Spend
from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name

DAY_PREFIX = "d_"
MEMBER_LEVELS = "member_levels"
_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


class MemberSpendRecord(Model):
    """Days are dynamic top-level attributes (`d_<date>`): read raw (`spend_from_item`)."""
    class Meta(TableMeta):
        table_name = table_name("member_spend")

    user_id = UnicodeAttribute(hash_key=True)
    lifetime_fen = NumberAttribute(default=0)


class StoreSettingRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("store_settings")

    key = UnicodeAttribute(hash_key=True)
    value = UnicodeAttribute()  # JSON
    version = NumberAttribute()
    updated_at = UTCDateTimeAttribute()
    updated_by = UnicodeAttribute(null=True)


def spend_key(user_id: str) -> tuple[str, dict[str, Any]]:
    return MemberSpendRecord.Meta.table_name, {"user_id": {"S": user_id}}


def rules_key() -> tuple[str, dict[str, Any]]:
    return StoreSettingRecord.Meta.table_name, {"key": {"S": MEMBER_LEVELS}}


def spend_change(user_id: str, fen: int, day: date) -> dict[str, Any]:
    """The raw Update adding `fen` (negative for a refund) to the lifetime and to `day`."""
    return {"TableName": MemberSpendRecord.Meta.table_name, "Key": {"user_id": {"S": user_id}},
            "UpdateExpression": "ADD lifetime_fen :fen, #day :fen",
            "ExpressionAttributeNames": {"#day": f"{DAY_PREFIX}{day.isoformat()}"},
            "ExpressionAttributeValues": {":fen": _serialize(fen)}}


def spend_from_item(item: dict[str, Any] | None) -> Spend:
    if not item:
        return Spend()
    by_day = {date.fromisoformat(name[len(DAY_PREFIX):]): int(_deserialize(value))
              for name, value in item.items() if name.startswith(DAY_PREFIX)}
    return Spend(lifetime_fen=int(_deserialize(item["lifetime_fen"])) if "lifetime_fen" in item else 0, by_day=by_day)


def get_spend(user_id: str) -> Spend:
    table, key = spend_key(user_id)
    return spend_from_item(_client().get_item(TableName=table, Key=key, ConsistentRead=True).get("Item"))


def drop_days_before(user_id: str, first_kept: date, spend: Spend) -> int:
    """Remove the day attributes older than `first_kept` (as read; removing is idempotent)."""
    old = sorted(day for day in (spend.by_day or {}) if day < first_kept)
    if not old:
        return 0
    names = {f"#d{index}": f"{DAY_PREFIX}{day.isoformat()}" for index, day in enumerate(old)}
    table, key = spend_key(user_id)
    _client().update_item(TableName=table, Key=key, UpdateExpression="REMOVE " + ", ".join(names),
                          ExpressionAttributeNames=names)
    return len(old)


def erase_spend(user_id: str) -> int:
    """PIPL deletion: the member's spend item (the orders keep the amounts accounting needs)."""
    table, key = spend_key(user_id)
    _client().delete_item(TableName=table, Key=key)
    return 1


def scan_spend(limit: int, start_key: dict | None = None) -> tuple[list[tuple[str, Spend]], dict | None]:
    """A page of members' spend items (the nightly prune walks the table once: each item must be
    read to know its old days, and a night's Scan of a few KB per member is cheap)."""
    table, _ = spend_key("-")
    request: dict[str, Any] = {"TableName": table, "Limit": limit}
    if start_key:
        request["ExclusiveStartKey"] = start_key
    answer = _client().scan(**request)
    return ([(item["user_id"]["S"], spend_from_item(item)) for item in answer.get("Items", [])],
            answer.get("LastEvaluatedKey"))


def rules_from_item(item: dict[str, Any] | None) -> tuple[tuple[LevelRule, ...], int]:
    """(rules, version); the seeds' defaults (version 0) until the merchant saves some."""
    if not item:
        return DEFAULT_RULES, 0
    rules = tuple(LevelRule(**rule) for rule in json.loads(item["value"]["S"]))
    return rules, int(item["version"]["N"])


def get_rules() -> tuple[tuple[LevelRule, ...], int]:
    table, key = rules_key()
    return rules_from_item(_client().get_item(TableName=table, Key=key, ConsistentRead=True).get("Item"))


def save_rules(rules: tuple[LevelRule, ...], expected_version: int, now: datetime, by: str) -> int:
    """Replace the rules if still at `expected_version`; the new version. Raises ConditionFailed."""
    value = json.dumps([rule.__dict__ for rule in rules], sort_keys=True)
    record = StoreSettingRecord(MEMBER_LEVELS, value=value, version=expected_version + 1, updated_at=now, updated_by=by)
    condition = (StoreSettingRecord.key.does_not_exist() if expected_version == 0
                 else StoreSettingRecord.version == expected_version)
    with condition_failure_as(ConditionFailed):
        record.save(condition=condition)
    return expected_version + 1


def _client():
    return MemberSpendRecord._get_connection().connection.client
