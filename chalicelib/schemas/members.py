"""Points, sign-in and member levels: bodies, queries and answers."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from chalicelib.domain.members import MAX_WINDOW_DAYS
from chalicelib.schemas.common import QueryModel, RequestModel, ResponseModel


class PointsQuery(QueryModel):
    before_ms: int | None = Field(default=None, ge=0, le=10 ** 14,
                                  description="history older than this (the last entry's at_ms of the previous page)")


class LotOut(ResponseModel):
    points: int
    expires_at: str = Field(description="the last moment they can be spent (end of that day, China Standard Time)")


class PointsEntryOut(ResponseModel):
    kind: str = Field(description="redeem, return, refund, earn_order, unearn (a refund after completion), "
                                   "sign_in, earn_review, expire")
    delta: int
    ref: str = Field(description="the order, refund, day or review line the entry is about")
    at: str
    at_ms: int
    expired: int = Field(default=0, description="points that could not come back because their lot had expired")


class PointsOut(ResponseModel):
    balance: int
    expiring_soon: int = Field(description="points expiring within 30 days")
    lots: list[LotOut] = Field(description="first to expire first: the order points are spent in")
    history: list[PointsEntryOut] = Field(description="newest first, at most 50; page with before_ms")


class SignInOut(ResponseModel):
    date: str = Field(description="the day signed in for (Asia/Shanghai)")
    points: int = Field(description="points that sign-in earned (the streak bonus included)")
    streak: int = Field(description="consecutive days signed in, today included")
    signed_in_now: bool = Field(description="false: already signed in today; the same result again")
    balance: int


class LevelRuleIn(RequestModel):
    level: Literal["vip", "black_gold"]
    threshold_fen: int = Field(ge=1, le=10 ** 12)
    window_days: int | None = Field(default=None, ge=1, le=MAX_WINDOW_DAYS, description="absent: lifetime spend")
    discount_permille: int = Field(ge=500, le=1000, description="what the member pays: 950 = 9.5折")


class LevelRulesBody(RequestModel):
    levels: list[LevelRuleIn] = Field(min_length=1, max_length=2)

    @model_validator(mode="after")
    def _each_level_once(self) -> "LevelRulesBody":
        if len({rule.level for rule in self.levels}) != len(self.levels):
            raise ValueError("each level may appear once")
        return self


class LevelRuleOut(ResponseModel):
    level: str
    threshold_fen: int
    window_days: int | None
    discount_permille: int


class LevelRulesOut(ResponseModel):
    levels: list[LevelRuleOut]
    version: int
