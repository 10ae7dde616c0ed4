"""Store promotions (activities): full-reduction tiers, group-buys (拼团) and bargains (砍价)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from chalicelib.domain.bargain import MAX_HELPERS, MIN_HELPERS
from chalicelib.domain.group_buy import MAX_GROUP_SIZE, MIN_GROUP_SIZE
from chalicelib.schemas.common import QueryModel, RequestModel, ResponseModel
from chalicelib.schemas.coupons import MAX_FEN, Moment, ScopeBody, ScopeOut

ActivityStatus = Literal["active", "paused"]
ActivityKind = Literal["full_reduction", "group_buy", "bargain"]
MAX_TIERS = 10
MAX_WINDOW_MINUTES = 7 * 24 * 60
# The fields each kind takes (besides kind, name, starts_at, ends_at, status): required, optional.
KIND_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "full_reduction": (("tiers",), ("scope",)),
    "group_buy": (("sku_id", "price_fen", "group_size", "window_minutes", "per_user_limit"), ()),
    "bargain": (("sku_id", "floor_price_fen", "helpers_to_floor", "window_minutes"), ("new_users_only",)),
}
ALL_KIND_FIELDS = {name for required, optional in KIND_FIELDS.values() for name in (*required, *optional)}


def kind_fields_problem(kind: str, sent: set[str]) -> str | None:
    """Which field a body of this kind lacks or should not have, if any."""
    required, optional = KIND_FIELDS[kind]
    missing = [name for name in required if name not in sent]
    if missing:
        return f"{kind} needs {', '.join(missing)}"
    foreign = sorted(name for name in sent & ALL_KIND_FIELDS if name not in (*required, *optional))
    if foreign:
        return f"{kind} does not take {', '.join(foreign)}"
    return None


def tiers_problem(tiers: list["TierBody"]) -> str | None:
    thresholds = [tier.threshold_fen for tier in tiers]
    if any(later <= earlier for earlier, later in zip(thresholds, thresholds[1:])):
        return "tiers: thresholds must strictly increase"
    if any(tier.off_fen >= tier.threshold_fen for tier in tiers):
        return "tiers: off_fen must be below its threshold_fen"
    return None


class TierBody(RequestModel):
    threshold_fen: int = Field(ge=1, le=MAX_FEN, description="the in-scope amount to reach (满)")
    off_fen: int = Field(ge=1, le=MAX_FEN, description="taken off once reached (减), below threshold_fen")


class _Activity(RequestModel):
    sku_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$",
                               description="group_buy, bargain: the SKU sold")
    price_fen: int | None = Field(default=None, ge=1, le=MAX_FEN, description="group_buy: the group price of one unit")
    group_size: int | None = Field(default=None, ge=MIN_GROUP_SIZE, le=MAX_GROUP_SIZE,
                                   description="group_buy: paid members that make a group succeed")
    window_minutes: int | None = Field(default=None, ge=1, le=MAX_WINDOW_MINUTES,
                                       description="group_buy: how long a group may fill; bargain: how long a "
                                                   "bargain may be cut and bought")
    per_user_limit: int | None = Field(default=None, ge=1, le=100,
                                       description="group_buy: group orders per buyer (an order closed unpaid or "
                                                   "refunded by a failed group gives its count back)")
    floor_price_fen: int | None = Field(default=None, ge=1, le=MAX_FEN, description="bargain: the lowest price")
    helpers_to_floor: int | None = Field(default=None, ge=MIN_HELPERS, le=MAX_HELPERS,
                                         description="bargain: about how many helpers' cuts reach the floor")
    new_users_only: bool | None = Field(default=None, description="bargain: only users who signed up after the "
                                                                   "bargain started may cut (default false)")

    @model_validator(mode="after")
    def _consistent(self):
        starts, ends = getattr(self, "starts_at", None), getattr(self, "ends_at", None)
        if starts is not None and ends is not None and ends <= starts:
            raise ValueError("ends_at must be after starts_at")
        problem = tiers_problem(self.tiers) if getattr(self, "tiers", None) else None
        if problem:
            raise ValueError(problem)
        return self


class CreateActivityBody(_Activity):
    """full_reduction takes tiers (and scope); group_buy sku_id, price_fen, group_size, window_minutes,
    per_user_limit; bargain sku_id, floor_price_fen, helpers_to_floor, window_minutes (and
    new_users_only). A field of another kind is 400."""
    kind: ActivityKind
    name: str | None = Field(default=None, min_length=1, max_length=64,
                             description="default 满减, 拼团 or 砍价 by kind")
    tiers: list[TierBody] | None = Field(default=None, min_length=1, max_length=MAX_TIERS,
                                         description="full_reduction: strictly increasing thresholds")
    scope: ScopeBody | None = Field(default=None, description="full_reduction; absent: the whole store")
    starts_at: Moment
    ends_at: Moment
    status: ActivityStatus = "active"

    @model_validator(mode="after")
    def _fields_of_kind(self):
        problem = kind_fields_problem(self.kind, set(self.model_fields_set))
        if problem:
            raise ValueError(problem)
        return self


class UpdateActivityBody(_Activity):
    """Changes show in GET /v1/activities at once and in checkout within 30 seconds (its cache)."""
    name: str | None = Field(default=None, min_length=1, max_length=64)
    tiers: list[TierBody] | None = Field(default=None, min_length=1, max_length=MAX_TIERS)
    scope: ScopeBody | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    status: ActivityStatus | None = None


class ActivityListQuery(QueryModel):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=2048)


class TierOut(ResponseModel):
    threshold_fen: int
    off_fen: int


class ActivityOut(ResponseModel):
    activity_id: str
    kind: ActivityKind
    name: str
    tiers: list[TierOut] = Field(default_factory=list, description="full_reduction")
    scope: ScopeOut | None = Field(default=None, description="full_reduction")
    starts_at: str
    ends_at: str
    sku_id: str | None = Field(default=None, description="group_buy, bargain")
    window_minutes: int | None = Field(default=None, description="group_buy, bargain")
    price_fen: int | None = Field(default=None, description="group_buy: the group price")
    group_size: int | None = None
    per_user_limit: int | None = None
    floor_price_fen: int | None = Field(default=None, description="bargain")
    helpers_to_floor: int | None = None
    new_users_only: bool | None = None


class ActivityList(ResponseModel):
    items: list[ActivityOut]


class AdminActivityOut(ActivityOut):
    status: ActivityStatus
    running: bool = Field(description="active and starts_at <= now < ends_at")
    created_at: str
    updated_at: str


class AdminActivityList(ResponseModel):
    items: list[AdminActivityOut]
    next_cursor: str | None
