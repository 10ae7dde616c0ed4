"""Merchant accounts with roles: `owner` (everything) and `staff` (no refunds, prices, accounts,
member levels, coupons or activities: chalicelib/api/admin_roles.py). Passwords are hashed with
scrypt as ever (domain/passwords.py). The env's first admin (ADMIN_USERNAME) is an owner. A role
change or a disabled account takes effect on the account's next request (services/auth.py reads
the account on every admin request). The last enabled owner cannot be demoted or disabled.
"""
from __future__ import annotations

from chalicelib import audit_context, clock
from chalicelib.domain import passwords
from chalicelib.errors import Conflict, NotFound
from chalicelib.log import get_logger
from chalicelib.storage import admins

log = get_logger(__name__)


class AccountNotFound(NotFound):
    code = "account_not_found"
    message = "No such account"


def _view(account: admins.Admin) -> dict:
    return {"username": account.username, "role": account.role, "disabled": account.disabled,
            "created_at": clock.to_iso(account.created_at) if account.created_at else None}


def list_accounts() -> list[dict]:
    return [_view(account) for account in admins.list_admins()]


def create_account(username: str, password: str, role: str) -> dict:
    try:
        created = admins.create_admin(username, passwords.hash_password(password), role, clock.now())
    except admins.AdminExists:
        raise Conflict("An account with this username exists", code="account_exists",
                       details=[{"field": "username"}]) from None
    log.info("admin account created", admin=username, admin_role=role)
    return _view(created)


def update_account(username: str, role: str | None, password: str | None, disabled: bool | None) -> dict:
    current = admins.get_admin(username)
    if current is None:
        raise AccountNotFound()
    loses_owner = current.role == "owner" and not current.disabled and (role == "staff" or disabled is True)
    if loses_owner and not [a for a in admins.list_admins()
                            if a.role == "owner" and not a.disabled and a.username != username]:
        raise Conflict("The store needs at least one enabled owner", code="last_owner")
    try:
        changed = admins.update_admin(current, clock.now(), role=role, disabled=disabled,
                                      password_hash=passwords.hash_password(password) if password else None)
    except admins.AdminChanged:
        raise Conflict("The account changed meanwhile; read it again", code="concurrent_update") from None
    after = {**_view(changed), **({"password": "changed"} if password else {})}
    audit_context.note(f"account:{username}", before=_view(current), after=after)
    log.info("admin account changed", admin=username, admin_role=changed.role, disabled=changed.disabled)
    return _view(changed)
