"""Referral binding: the invitee's side of a share link."""
from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from chalicelib import clock
from chalicelib.domain.identity import referral_code_for
from chalicelib.schemas.common import RequestModel, ResponseModel

if TYPE_CHECKING:
    from chalicelib.storage.users import User


class ReferralBindBody(RequestModel):
    referrer_code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$",
                               description="the sharer's referral_code (GET /v1/me), from the share link")


class ReferralBinding(ResponseModel):
    referrer_code: str = Field(description="the referral code of the user this user is bound to")
    bound_at: str

    @classmethod
    def of(cls, user: User) -> "ReferralBinding":
        return cls(referrer_code=referral_code_for(user.referrer_id) or "", bound_at=clock.to_iso(user.referred_at))
