"""Login and the user's own profile."""
from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field, HttpUrl

from chalicelib import clock
from chalicelib.domain.identity import mask_phone, referral_code_for
from chalicelib.schemas.common import RequestModel, ResponseModel

if TYPE_CHECKING:
    from chalicelib.storage.users import User

MemberLevel = Literal["normal", "vip", "black_gold"]


class LoginBody(RequestModel):
    code: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$",
                      description="the code from wx.login(), valid once for five minutes")


class AdminLoginBody(RequestModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class UserProfile(ResponseModel):
    user_id: str
    nickname: str | None
    avatar_url: str | None
    member_level: MemberLevel
    points: int
    phone_masked: str | None = Field(description="e.g. 138****8000; the full number is never returned")
    privacy_consent_version: str | None
    birthday: str | None = Field(default=None, description="YYYY-MM-DD")
    referral_code: str | None = Field(default=None, description="this user's code for share links: a new user "
                                                                "who binds to it (POST /v1/referrals/bind) is "
                                                                "their invitee")
    created_at: str

    @classmethod
    def of(cls, user: User) -> "UserProfile":
        return cls(user_id=user.user_id, nickname=user.nickname, avatar_url=user.avatar_url,
                   member_level=user.member_level, points=user.points, phone_masked=mask_phone(user.phone),
                   privacy_consent_version=user.privacy_consent_version,
                   birthday=user.birthday.isoformat() if user.birthday else None,
                   referral_code=referral_code_for(user.user_id),
                   created_at=clock.to_iso(user.created_at))


class LoginReply(ResponseModel):
    token: str
    expires_in: int = Field(description="seconds until the token expires")
    user: UserProfile
    is_new_user: bool


class AdminLoginReply(ResponseModel):
    token: str
    expires_in: int


def _past_birthday(day: date) -> date:
    if not date(1900, 1, 1) <= day <= clock.now().astimezone(clock.CHINA_TZ).date():
        raise ValueError("must be between 1900-01-01 and today")
    return day


class ProfilePatch(RequestModel):
    nickname: str | None = Field(default=None, min_length=1, max_length=64)
    avatar_url: HttpUrl | None = Field(default=None, strict=False)
    birthday: Annotated[date, AfterValidator(_past_birthday)] | None = Field(
        default=None, strict=False,
        description="YYYY-MM-DD, as <picker mode=\"date\"> gives it; set once (409 birthday_already_set "
                    "for another date): the birthday coupon comes on it every year")


class PhoneBody(RequestModel):
    code: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$",
                      description='the code from <button open-type="getPhoneNumber">')


class PrivacyConsentBody(RequestModel):
    version: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$",
                         description="the version of the privacy policy the user agreed to")
