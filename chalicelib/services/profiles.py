"""The user's own profile: read it, edit nickname/avatar/birthday, bind a phone number, record consent."""
from __future__ import annotations

from datetime import date

from chalicelib import clock
from chalicelib.errors import Conflict, NotFound
from chalicelib.services.access_token import call_with_access_token
from chalicelib.services.wechat_clients import open_api
from chalicelib.services.wechat_errors import wechat_failures_as_app_errors
from chalicelib.storage import users
from chalicelib.storage.base import ConditionFailed


def with_standing(user: users.User) -> users.User:
    """The user with the member level and points balance as they stand now: computed from the
    member's spend and the merchant's level rules, and from the points lots (one BatchGetItem)."""
    from dataclasses import replace

    from chalicelib.services import members, points
    from chalicelib.storage import members as member_store
    from chalicelib.storage import points as point_store
    from chalicelib.storage.batch_get import batch_get_raw

    keys = [point_store.account_key(user.user_id), member_store.spend_key(user.user_id), member_store.rules_key()]
    found = batch_get_raw(keys, users.UserRecord._get_connection().connection)
    first = {table: (items[0] if items else None) for table, items in found.items()}
    account = point_store.account_from_item(user.user_id, first[keys[0][0]])
    membership = members.membership_of(member_store.spend_from_item(first[keys[1][0]]),
                                       member_store.rules_from_item(first[keys[2][0]])[0])
    return replace(user, member_level=membership.level, points=account.balance(points.today_in_china()))


def get_profile(user_id: str) -> users.User:
    user = users.get_user(user_id)
    if user is None:
        raise NotFound("No such user", code="user_not_found")
    return user


def update_profile(user_id: str, *, nickname: str | None, avatar_url: str | None,
                   birthday: date | None = None) -> users.User:
    """A birthday is set once: setting the same one again changes nothing, another one is 409."""
    if nickname is None and avatar_url is None and birthday is None:
        return get_profile(user_id)
    try:
        return users.update_profile(user_id, clock.now(), nickname=nickname, avatar_url=avatar_url, birthday=birthday)
    except ConditionFailed:
        if birthday is not None and users.get_user(user_id) is not None:
            raise Conflict("The birthday is already set and cannot be changed", code="birthday_already_set") from None
        raise NotFound("No such user", code="user_not_found") from None


def bind_phone_number(user_id: str, phone_code: str) -> users.User:
    """Exchange the code from <button open-type="getPhoneNumber"> for the number and store it.
    Only with the user's privacy consent (403 consent_required): the number is personal
    information, never fetched from WeChat before the user agreed to the policy."""
    from chalicelib.services import privacy

    privacy.require_consent(get_profile(user_id))
    with wechat_failures_as_app_errors("phone number"):
        phone = call_with_access_token(lambda token: open_api().get_phone_number(token, phone_code))
    try:
        return users.update_profile(user_id, clock.now(), phone=phone.pure_phone_number,
                                    phone_country_code=phone.country_code)
    except ConditionFailed:
        raise NotFound("No such user", code="user_not_found") from None


def record_privacy_consent(user_id: str, version: str) -> users.User:
    """The user agreed to privacy policy `version` (wx.requirePrivacyAuthorize): an entry of the
    consent ledger, written with the user's current version (services/privacy.py)."""
    from chalicelib.services import privacy

    privacy.record_consent(user_id, version, True, source="profile")  # 404 user_not_found when gone
    return get_profile(user_id)
