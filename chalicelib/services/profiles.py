"""The user's own profile: read it, edit nickname/avatar, bind a phone number, record consent."""
from __future__ import annotations

from chalicelib import clock
from chalicelib.errors import NotFound
from chalicelib.services.access_token import call_with_access_token
from chalicelib.services.wechat_clients import open_api
from chalicelib.services.wechat_errors import wechat_failures_as_app_errors
from chalicelib.storage import users
from chalicelib.storage.base import ConditionFailed


def get_profile(user_id: str) -> users.User:
    user = users.get_user(user_id)
    if user is None:
        raise NotFound("No such user", code="user_not_found")
    return user


def update_profile(user_id: str, *, nickname: str | None, avatar_url: str | None) -> users.User:
    if nickname is None and avatar_url is None:
        return get_profile(user_id)
    try:
        return users.update_profile(user_id, clock.now(), nickname=nickname, avatar_url=avatar_url)
    except ConditionFailed:
        raise NotFound("No such user", code="user_not_found") from None


def bind_phone_number(user_id: str, phone_code: str) -> users.User:
    """Exchange the code from <button open-type="getPhoneNumber"> for the number and store it."""
    with wechat_failures_as_app_errors("phone number"):
        phone = call_with_access_token(lambda token: open_api().get_phone_number(token, phone_code))
    try:
        return users.update_profile(user_id, clock.now(), phone=phone.pure_phone_number,
                                    phone_country_code=phone.country_code)
    except ConditionFailed:
        raise NotFound("No such user", code="user_not_found") from None


def record_privacy_consent(user_id: str, version: str) -> users.User:
    """The user agreed to privacy policy `version` (wx.requirePrivacyAuthorize); stamped with the time."""
    try:
        return users.update_profile(user_id, clock.now(), privacy_consent_version=version)
    except ConditionFailed:
        raise NotFound("No such user", code="user_not_found") from None
