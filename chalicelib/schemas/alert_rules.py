"""`GET/PATCH /v1/admin/alert-rules`: the business alert rules (domain/alert_rules.py)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from chalicelib.schemas.common import RequestModel, ResponseModel

RuleName = Literal["cancel_rate", "pay_success_rate", "notify_failures", "dead_letter_depth", "refund_spike"]


class AlertRuleOut(ResponseModel):
    rule: RuleName
    enabled: bool
    threshold: int = Field(description="cancel_rate / pay_success_rate: permille (80 = 8%); notify_failures, "
                                       "dead_letter_depth: a count; refund_spike: permille of the 7-day daily mean")
    min_samples: int = Field(description="cancel_rate: orders placed today; pay_success_rate: payments asked "
                                         "for today; refund_spike: fen refunded today; below it the rule is quiet")
    window: Literal["day", "hour"] = Field(description="a rule fires at most once per window (Asia/Shanghai)")


class AlertRulesOut(ResponseModel):
    rules: list[AlertRuleOut]
    version: int = Field(description="send it back in a PATCH to refuse (409) a change made meanwhile")


class AlertRuleChange(RequestModel):
    rule: RuleName
    enabled: bool | None = None
    threshold: int | None = Field(default=None, ge=0, le=1_000_000)
    min_samples: int | None = Field(default=None, ge=0, le=100_000_000)


class AlertRulesBody(RequestModel):
    rules: list[AlertRuleChange] = Field(min_length=1, max_length=5)
    version: int | None = Field(default=None, ge=0, description="the version read; a mismatch is 409")
