"""Referral binding: the invitee's side of a share link."""
from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from chalicelib import clock
from chalicelib.domain.identity import referral_code_for
from chalicelib.schemas.common import RequestModel, ResponseModel

if TYPE_CHECKING:
    from chalicelib.storage.users import User


class ReferralBindBody(RequestModel):
    referrer_code: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$",
                                      description="the sharer's referral_code (GET /v1/me), from the share link")
    scene: str | None = Field(default=None, min_length=1, max_length=32,
                              description="instead of referrer_code: the scene of the share poster's mini-program "
                                          "code the user opened (GET /v1/products/{id}/poster; the packing of "
                                          "domain/posters.py); 404 referrer_not_found for any other")

    @model_validator(mode="after")
    def _one_source(self) -> "ReferralBindBody":
        if (self.referrer_code is None) == (self.scene is None):
            raise ValueError("send referrer_code or scene (one of them)")
        return self


class ReferralBinding(ResponseModel):
    referrer_code: str = Field(description="the referral code of the user this user is bound to")
    bound_at: str

    @classmethod
    def of(cls, user: User) -> "ReferralBinding":
        return cls(referrer_code=referral_code_for(user.referrer_id) or "", bound_at=clock.to_iso(user.referred_at))
