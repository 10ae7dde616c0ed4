"""Logging in (mini-program users through WeChat, merchants with a password) and checking tokens."""
from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass

from chalicelib import clock
from chalicelib.domain import auth_tokens, passwords
from chalicelib.errors import Forbidden, Unauthorized, UpstreamError
from chalicelib.lazy import lazy_module
from chalicelib.log import get_logger
from chalicelib.services.wechat_clients import open_api
from chalicelib.services.wechat_errors import wechat_failures_as_app_errors
from chalicelib.settings import get_settings
from chalicelib.storage import admins, sessions, users
from chalicelib.storage.users import OpenidMismatch

privacy = lazy_module("chalicelib.services.privacy")  # its login resolver: read on login only

log = get_logger(__name__)
gifts = lazy_module("chalicelib.services.gifts")  # only a new user's login needs it

# A bearer token as RFC 6750 writes it (b64token), and no longer than any token we issue could be.
# Anything else is refused before it is verified: verify_token compares signatures with
# hmac.compare_digest, which raises TypeError on non-ASCII text, and a header is whatever a
# client sends (found by fuzzing the logout routes: "Bearer v1.x.é" was a 500).
TOKEN_SYNTAX = re.compile(r"[A-Za-z0-9\-._~+/]{1,2048}=*")


@functools.lru_cache(maxsize=1)
def _dummy_password_hash() -> str:
    """A password check for an unknown user still pays for one scrypt, so the answer time does
    not tell which usernames exist. Computed on first use: at import it would cost every cold
    start ~60 ms."""
    return passwords.hash_password("not-a-real-password", salt=b"0" * 16)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the subject (user_id or admin username), role, and session."""
    subject: str
    role: str
    session_id: str
    admin_role: str | None = None  # an admin's current role, "owner" or "staff" (read from the account)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int


@dataclass(frozen=True)
class UserLogin:
    issued: IssuedToken
    user: users.User


def _issue(subject: str, role: str, wechat_session_key: str | None = None,
           admin_role: str | None = None) -> IssuedToken:
    settings = get_settings()
    issued_at = clock.epoch_seconds()
    ttl = settings.auth_token_ttl_seconds
    session_id = secrets.token_urlsafe(18)
    sessions.create_session(session_id, subject, role, issued_at, issued_at + ttl, wechat_session_key)
    claims = auth_tokens.TokenClaims(session_id, subject, role, issued_at, issued_at + ttl, admin_role)
    return IssuedToken(auth_tokens.issue_token(claims, settings.auth_token_secret), ttl)


def log_in_with_wechat(code: str) -> UserLogin:
    """wx.login code -> jscode2session -> upsert the user -> a new session and token."""
    settings = get_settings()
    with wechat_failures_as_app_errors("login"):
        wechat_session = open_api().code_to_session(code)
    # A deleted account's identity starts a new account (services/privacy.py: login tombstones).
    user_id = privacy.user_id_for_login(settings.wechat_appid, wechat_session.openid)
    try:
        user = users.upsert_on_login(user_id, wechat_session.openid, wechat_session.unionid, clock.now())
    except OpenidMismatch:
        log.error("user id collision between two openids", user_id=user_id)
        raise UpstreamError("This WeChat account cannot be logged in; contact the store", code="login_conflict") from None
    issued = _issue(user.user_id, "user", wechat_session.session_key)
    log.info("user logged in", user_id=user.user_id, is_new=user.is_new)
    _give_new_user_gifts(user)
    return UserLogin(issued, user)


def _give_new_user_gifts(user: users.User) -> None:
    """The new-user coupons (services/gifts.py): never a reason for a login to fail."""
    try:
        gifts.give_new_user_gifts(user.user_id, user.created_at)
    except Exception:  # noqa: BLE001
        log.exception("new-user gift failed; the next login retries", user_id=user.user_id)


def log_in_admin(username: str, password: str) -> IssuedToken:
    account = admins.get_admin(username)
    if not passwords.verify_password(password, account.password_hash if account else _dummy_password_hash()) or not account:
        raise Unauthorized("Wrong username or password", code="invalid_credentials")
    if account.disabled:
        raise Unauthorized("This account is disabled; ask the store's owner", code="account_disabled")
    log.info("admin logged in", admin=username, admin_role=account.role)
    return _issue(account.username, "admin", admin_role=account.role)


def authenticate(token: str, required_role: str) -> Principal:
    """The caller behind a bearer token, or 401 (bad/expired/revoked) / 403 (wrong role)."""
    if not TOKEN_SYNTAX.fullmatch(token):
        raise auth_tokens.InvalidToken()
    claims = auth_tokens.verify_token(token, get_settings().auth_token_secret, clock.epoch_seconds())
    session = sessions.get_session(claims.session_id)
    if session is None or session.revoked or session.expires_at <= clock.epoch_seconds() \
            or session.subject != claims.subject or session.role != claims.role:
        raise Unauthorized("This token has been revoked; log in again", code="token_revoked")
    if claims.role != required_role:
        raise Forbidden(f"This route needs a {required_role} token")
    admin_role = _current_admin_role(claims.subject) if claims.role == "admin" else None
    return Principal(subject=claims.subject, role=claims.role, session_id=claims.session_id, admin_role=admin_role)


def _current_admin_role(username: str) -> str:
    """The account's role now, not when the token was issued: a demotion or a disabled account
    takes effect on the next request (one GetItem per admin request; merchants are few)."""
    account = admins.get_admin(username)
    if account is None or account.disabled:
        raise Unauthorized("This account is disabled; ask the store's owner", code="account_disabled")
    return account.role


def log_out(principal: Principal) -> None:
    """Revoke the caller's session; logging out twice is harmless."""
    sessions.revoke_session(principal.session_id, clock.epoch_seconds())


def ensure_first_admin() -> bool:
    """Create the admin account from ADMIN_USERNAME/ADMIN_PASSWORD when absent (`make tables`)."""
    settings = get_settings()
    if not settings.admin_username or not settings.admin_password:
        return False
    return admins.create_admin_if_absent(settings.admin_username,
                                         passwords.hash_password(settings.admin_password), clock.now())
