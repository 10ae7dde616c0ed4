"""Table `users`: one item per mini-program user, keyed by a user_id derived from the openid.

A user may be bound once to the user who invited them (`referrer_id`, `referred_at`; a
conditional write, attribute_not_exists, so the first binding wins and never changes). The
referrer is found from the code in the share link without a lookup: the code is the user id,
reversibly disguised (domain/identity.py, `referral_code_for`).

Table `user_birthdays` (hash `month_day` "MM-DD", range `user_id`) lists who was born on each
day, written with the user's birthday, so the daily birthday gift reads one partition instead
of scanning every user.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterator

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name


class UserRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("users")

    user_id = UnicodeAttribute(hash_key=True)
    openid = UnicodeAttribute()
    unionid = UnicodeAttribute(null=True)
    nickname = UnicodeAttribute(null=True)
    avatar_url = UnicodeAttribute(null=True)
    member_level = UnicodeAttribute(default="normal")
    points = NumberAttribute(default=0)
    phone = UnicodeAttribute(null=True)  # personal data: never logged, only masked in responses
    phone_country_code = UnicodeAttribute(null=True)
    privacy_consent_version = UnicodeAttribute(null=True)
    privacy_consented_at = UTCDateTimeAttribute(null=True)
    birthday = UnicodeAttribute(null=True)  # YYYY-MM-DD; set once (the birthday gift is yearly)
    referrer_id = UnicodeAttribute(null=True)  # who invited this user; set once (services/referrals.py)
    referred_at = UTCDateTimeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    last_login_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class BirthdayRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("user_birthdays")

    month_day = UnicodeAttribute(hash_key=True)  # MM-DD
    user_id = UnicodeAttribute(range_key=True)


@dataclass(frozen=True)
class User:
    user_id: str
    openid: str
    nickname: str | None
    avatar_url: str | None
    member_level: str
    points: int
    phone: str | None
    privacy_consent_version: str | None
    privacy_consented_at: datetime | None
    created_at: datetime
    is_new: bool = False
    birthday: date | None = None
    referrer_id: str | None = None
    referred_at: datetime | None = None


def _to_user(record: UserRecord, is_new: bool = False) -> User:
    return User(
        user_id=record.user_id, openid=record.openid, nickname=record.nickname,
        avatar_url=record.avatar_url, member_level=record.member_level or "normal",
        points=int(record.points or 0), phone=record.phone,
        privacy_consent_version=record.privacy_consent_version,
        privacy_consented_at=record.privacy_consented_at, created_at=record.created_at, is_new=is_new,
        birthday=date.fromisoformat(record.birthday) if record.birthday else None,
        referrer_id=record.referrer_id, referred_at=record.referred_at,
    )


class OpenidMismatch(Exception):
    """The derived user_id already belongs to another openid (a hash collision): never merge them."""


def upsert_on_login(user_id: str, openid: str, unionid: str | None, now: datetime) -> User:
    """Create the user on first login, or stamp last_login_at; one UpdateItem either way.

    Condition: the item is new, or it is this openid's. `created_at` and defaults are set only
    when absent, so a returning user keeps their profile.
    """
    record = UserRecord(user_id)
    actions = [
        UserRecord.openid.set(openid),
        UserRecord.last_login_at.set(now),
        UserRecord.updated_at.set(now),
        UserRecord.created_at.set(UserRecord.created_at | now),
        UserRecord.member_level.set(UserRecord.member_level | "normal"),
        UserRecord.points.set(UserRecord.points | 0),
    ]
    if unionid:
        actions.append(UserRecord.unionid.set(unionid))
    with condition_failure_as(OpenidMismatch):
        record.update(actions=actions,
                      condition=UserRecord.user_id.does_not_exist() | (UserRecord.openid == openid))
    return _to_user(record, is_new=record.created_at == now)


def get_user(user_id: str, consistent: bool = False) -> User | None:
    try:
        return _to_user(UserRecord.get(user_id, consistent_read=consistent))
    except UserRecord.DoesNotExist:
        return None


def bind_referrer(user_id: str, referrer_id: str, now: datetime) -> User:
    """Bind the user to the one who invited them. Condition: the user exists and has no
    referrer yet (the first binding wins, and is never changed). Raises ConditionFailed."""
    record = UserRecord(user_id)
    with condition_failure_as(ConditionFailed):
        record.update(actions=[UserRecord.referrer_id.set(referrer_id), UserRecord.referred_at.set(now),
                               UserRecord.updated_at.set(now)],
                      condition=UserRecord.user_id.exists() & UserRecord.referrer_id.does_not_exist())
    return _to_user(record)


def update_profile(user_id: str, now: datetime, *, nickname: str | None = None,
                   avatar_url: str | None = None, phone: str | None = None,
                   phone_country_code: str | None = None,
                   privacy_consent_version: str | None = None, birthday: date | None = None) -> User:
    """Set the given fields on an existing user (condition: the user exists).

    A birthday is set once: the condition also requires that none (or the same one) is set, and
    the user is listed under its MM-DD in `user_birthdays` in the same transaction."""
    record = UserRecord(user_id)
    actions = [UserRecord.updated_at.set(now)]
    if nickname is not None:
        actions.append(UserRecord.nickname.set(nickname))
    if avatar_url is not None:
        actions.append(UserRecord.avatar_url.set(avatar_url))
    if phone is not None:
        actions.append(UserRecord.phone.set(phone))
        actions.append(UserRecord.phone_country_code.set(phone_country_code or "86"))
    if privacy_consent_version is not None:
        actions.append(UserRecord.privacy_consent_version.set(privacy_consent_version))
        actions.append(UserRecord.privacy_consented_at.set(now))
    if birthday is not None:
        return _set_with_birthday(user_id, actions, birthday)
    with condition_failure_as(ConditionFailed):
        record.update(actions=actions, condition=UserRecord.user_id.exists())
    return _to_user(record)


def _set_with_birthday(user_id: str, actions: list, birthday: date) -> User:
    text = birthday.isoformat()
    condition = UserRecord.user_id.exists() & (UserRecord.birthday.does_not_exist() | (UserRecord.birthday == text))
    try:
        with TransactWrite(connection=UserRecord._get_connection().connection) as transaction:
            transaction.save(BirthdayRecord(text[5:], user_id))
            transaction.update(UserRecord(user_id), actions=actions + [UserRecord.birthday.set(text)],
                               condition=condition)
    except TransactWriteError as error:
        if any(reason and reason.code == "ConditionalCheckFailed" for reason in error.cancellation_reasons or []):
            raise ConditionFailed(f"user {user_id} is missing or has another birthday") from None
        raise
    return _to_user(UserRecord.get(user_id, consistent_read=True))


def users_born_on(month_day: str) -> Iterator[str]:
    """The ids of the users whose birthday is on MM-DD (one partition, paged by PynamoDB)."""
    for record in BirthdayRecord.query(month_day, attributes_to_get=["user_id"]):
        yield record.user_id
