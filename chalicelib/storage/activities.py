"""Table `activities`: one item per store promotion.

Kinds: `full_reduction` (满减: tiers of threshold_fen -> off_fen over a scope), `group_buy`
(拼团: one SKU at `price_fen` for groups of `group_size` within `window_minutes`, at most
`per_user_limit` orders per buyer) and `bargain` (砍价: one SKU cut down to `floor_price_fen` by
about `helpers_to_floor` helpers within `window_minutes`, `new_users_only` if set); each runs while
starts_at <= now < ends_at and its status is active. The table stays small (a store runs a handful of promotions),
so the checkout's read of the running ones is one Scan, cached per container
(services/activities.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from pynamodb.attributes import BooleanAttribute, ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from chalicelib.domain.coupons import CouponScope, FullReductionActivity
from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name
from chalicelib.storage.coupons import ScopeAttribute, scope_dict, scope_from


class TierAttribute(MapAttribute):
    threshold_fen = NumberAttribute()
    off_fen = NumberAttribute()


class ActivityRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("activities")

    activity_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()  # full_reduction | group_buy | bargain
    name = UnicodeAttribute()
    tiers = ListAttribute(of=TierAttribute, default=list)  # increasing thresholds
    scope = ScopeAttribute(default=dict)
    starts_at = UTCDateTimeAttribute()
    ends_at = UTCDateTimeAttribute()
    status = UnicodeAttribute()  # active | paused
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    # group_buy and bargain
    sku_id = UnicodeAttribute(null=True)
    window_minutes = NumberAttribute(null=True)
    price_fen = NumberAttribute(null=True)  # group_buy
    group_size = NumberAttribute(null=True)
    per_user_limit = NumberAttribute(null=True)
    floor_price_fen = NumberAttribute(null=True)  # bargain
    helpers_to_floor = NumberAttribute(null=True)
    new_users_only = BooleanAttribute(null=True)


OFFER_FIELDS = ("sku_id", "window_minutes", "price_fen", "group_size", "per_user_limit", "floor_price_fen",
                "helpers_to_floor", "new_users_only")
EDITABLE_FIELDS = ("name", "tiers", "scope", "starts_at", "ends_at", "status", *OFFER_FIELDS[1:])


@dataclass(frozen=True)
class Activity:
    activity_id: str
    kind: str
    name: str
    tiers: tuple[tuple[int, int], ...]  # (threshold_fen, off_fen), increasing thresholds
    scope: CouponScope
    starts_at: datetime
    ends_at: datetime
    status: str
    created_at: datetime
    updated_at: datetime
    sku_id: str | None = None
    window_minutes: int | None = None
    price_fen: int | None = None
    group_size: int | None = None
    per_user_limit: int | None = None
    floor_price_fen: int | None = None
    helpers_to_floor: int | None = None
    new_users_only: bool = False

    def running(self, now: datetime) -> bool:
        return self.status == "active" and self.starts_at <= now < self.ends_at

    def as_full_reduction(self) -> FullReductionActivity:
        return FullReductionActivity(activity_id=self.activity_id, name=self.name, tiers=self.tiers, scope=self.scope,
                                     starts_at=self.starts_at, ends_at=self.ends_at)


def to_activity(record: ActivityRecord) -> Activity:
    scope = record.scope.as_dict() if isinstance(record.scope, MapAttribute) else dict(record.scope or {})
    return Activity(activity_id=record.activity_id, kind=record.kind, name=record.name,
                    tiers=tuple((int(tier.threshold_fen), int(tier.off_fen)) for tier in record.tiers or ()),
                    scope=scope_from(scope), starts_at=record.starts_at, ends_at=record.ends_at, status=record.status,
                    created_at=record.created_at, updated_at=record.updated_at,
                    **{name: _offer_value(getattr(record, name)) for name in OFFER_FIELDS})


def _offer_value(value: Any) -> Any:
    return int(value) if isinstance(value, float) else value


def _stored(name: str, value: Any) -> Any:
    if name == "tiers":
        return [TierAttribute(threshold_fen=threshold, off_fen=off) for threshold, off in value]
    if name == "scope":
        return scope_dict(value)
    return value


def create_activity(activity: Activity) -> None:
    """Raises ConditionFailed when the id exists."""
    record = ActivityRecord(activity.activity_id, kind=activity.kind, name=activity.name,
                            tiers=_stored("tiers", activity.tiers), scope=_stored("scope", activity.scope),
                            starts_at=activity.starts_at, ends_at=activity.ends_at, status=activity.status,
                            created_at=activity.created_at, updated_at=activity.updated_at,
                            **{name: getattr(activity, name) for name in OFFER_FIELDS
                               if getattr(activity, name) not in (None, False)})
    with condition_failure_as(ConditionFailed):
        record.save(condition=ActivityRecord.activity_id.does_not_exist())


def get_activity(activity_id: str, consistent: bool = False) -> Activity | None:
    try:
        return to_activity(ActivityRecord.get(activity_id, consistent_read=consistent))
    except ActivityRecord.DoesNotExist:
        return None


def update_activity(activity_id: str, changes: Mapping[str, Any], now: datetime) -> Activity:
    """Set the changed fields (EDITABLE_FIELDS). Condition: it exists. Raises ConditionFailed."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    actions = [ActivityRecord.updated_at.set(now)]
    actions += [getattr(ActivityRecord, name).set(_stored(name, value)) for name, value in changes.items()]
    record = ActivityRecord(activity_id)
    with condition_failure_as(ConditionFailed):
        record.update(actions=actions, condition=ActivityRecord.activity_id.exists())
    return to_activity(record)


def list_activities(limit: int, cursor: dict[str, Any] | None) -> tuple[list[Activity], dict[str, Any] | None]:
    """Every activity, a page at a time (the merchant's list)."""
    results = ActivityRecord.scan(limit=limit, last_evaluated_key=cursor)
    return [to_activity(record) for record in results], results.last_evaluated_key


def active_not_ended(now: datetime) -> list[Activity]:
    """Active activities that have not ended (running or upcoming): one Scan of the small table."""
    condition = (ActivityRecord.status == "active") & (ActivityRecord.ends_at > now)
    return [to_activity(record) for record in ActivityRecord.scan(condition)]
