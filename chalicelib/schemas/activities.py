"""Store promotions (activities): full-reduction tiers for now; group-buys and bargains later."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from chalicelib.errors import BadRequest
from chalicelib.schemas.common import QueryModel, RequestModel, ResponseModel
from chalicelib.schemas.coupons import MAX_FEN, Moment, ScopeBody, ScopeOut

ActivityStatus = Literal["active", "paused"]
LATER_KINDS = ("group_buy", "bargain")  # in API.md, built by a later issue
MAX_TIERS = 10


class ActivityKindNotSupported(BadRequest):
    code = "activity_kind_not_supported"
    message = "Only full_reduction activities can be created for now"


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
    kind: Literal["full_reduction"] = Field(description="group_buy and bargain: 400 activity_kind_not_supported "
                                                        "(a later issue)")
    name: str = Field(default="满减", min_length=1, max_length=64)
    tiers: list[TierBody] = Field(min_length=1, max_length=MAX_TIERS, description="strictly increasing thresholds")
    scope: ScopeBody | None = Field(default=None, description="absent: the whole store")
    starts_at: Moment
    ends_at: Moment
    status: ActivityStatus = "active"

    @model_validator(mode="before")
    @classmethod
    def _kind_supported(cls, data: Any) -> Any:
        # An AppError is not a ValueError, so pydantic lets it through to the HTTP layer as is:
        # the client learns the kind exists but is not built yet, not that its fields are wrong.
        if isinstance(data, dict) and data.get("kind") in LATER_KINDS:
            raise ActivityKindNotSupported(details=[{"field": "kind", "message": f"{data['kind']}: not yet"}])
        return data


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
    kind: Literal["full_reduction"]
    name: str
    tiers: list[TierOut]
    scope: ScopeOut
    starts_at: str
    ends_at: str


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
