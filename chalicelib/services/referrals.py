"""Referral binding: a new user binds to the user whose share link brought them.

Rules (POST /v1/referrals/bind {referrer_code}):
- every user has a referral code (GET /v1/me `referral_code`): their user id, reversibly
  disguised (domain/identity.py), so the code -> referrer step is a GetItem, never a scan;
- the first binding wins and is immutable: one conditional write (attribute_not_exists
  referrer_id). Binding again to the same referrer answers the same binding (200); to another,
  409 already_bound; to oneself, 409 cannot_refer_self; an unknown code, 404 referrer_not_found;
- only a new user may bind: within NEW_USER_HOURS (24 h, the new-user gift's window) of their
  first login (`created_at`), else 409 not_a_new_user; so an old customer cannot be claimed by
  whoever shares a link with them. The referrer may be any existing user.

What a binding earns the referrer: services/gifts.py `reward_referrer` (the share coupons, on
the invitee's first paid order after the binding), and commissions on the invitee's orders placed
after it (services/commissions.py): level 1 to the referrer, level 2 (DISTRIBUTION_LEVELS=2) to
the referrer's own referrer. Levels are not stored: the chain of immutable bindings is read when
an order's commissions are counted. A share link's `scene` (a mini-program code's) binds too.
"""
from __future__ import annotations

from datetime import timedelta

from chalicelib import clock
from chalicelib.domain import posters
from chalicelib.domain.identity import user_id_for_referral_code
from chalicelib.errors import Conflict, NotFound
from chalicelib.log import get_logger
from chalicelib.services.gifts import NEW_USER_HOURS
from chalicelib.storage import users
from chalicelib.storage.base import ConditionFailed

log = get_logger(__name__)

BIND_WINDOW = timedelta(hours=NEW_USER_HOURS)


def bind(user_id: str, referrer_code: str | None, scene: str | None = None) -> users.User:
    """Bind the user to the owner of `referrer_code` (or of the code in a share poster's `scene`,
    domain/posters.py's packing); returns the user as bound."""
    if referrer_code is None:
        try:
            referrer_code, _ = posters.decode_scene(scene or "")
        except posters.SceneError:
            raise _referrer_not_found() from None
    referrer_id = user_id_for_referral_code(referrer_code)
    if referrer_id is None:
        raise _referrer_not_found()
    if referrer_id == user_id:
        raise Conflict("You cannot use your own referral code", code="cannot_refer_self")
    user = _user(user_id, consistent=True)
    if user.referrer_id is not None:
        return _already(user, referrer_id)
    now = clock.now()
    if now - user.created_at >= BIND_WINDOW:
        raise Conflict(f"Only a user within {NEW_USER_HOURS} hours of their first login can be referred",
                       code="not_a_new_user")
    if users.get_user(referrer_id) is None:
        raise _referrer_not_found()
    try:
        bound = users.bind_referrer(user_id, referrer_id, now)
    except ConditionFailed:  # bound meanwhile (a concurrent request), or the user is gone
        return _already(_user(user_id, consistent=True), referrer_id)
    log.info("user bound to a referrer", user_id=user_id, referrer_id=referrer_id)
    return bound


def _already(user: users.User, referrer_id: str) -> users.User:
    if user.referrer_id == referrer_id:
        return user  # the same binding again: answered as it is
    raise Conflict("Already bound to another referrer; a binding never changes", code="already_bound")


def _user(user_id: str, consistent: bool = False) -> users.User:
    user = users.get_user(user_id, consistent=consistent)
    if user is None:
        raise NotFound("No such user", code="user_not_found")
    return user


def _referrer_not_found() -> NotFound:
    return NotFound("No user has this referral code", code="referrer_not_found",
                    details=[{"field": "referrer_code", "message": "unknown"}])
