"""Merchant accounts and roles, the audit log and the dashboard (issue 16)."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
(AccountCreate, AccountList, AccountOut, AccountPatch, AuditList, AuditQuery, DashboardOut, MeOut) = lazy_names(
    "chalicelib.schemas.admin_ops",
    "AccountCreate", "AccountList", "AccountOut", "AccountPatch", "AuditList", "AuditQuery", "DashboardOut", "MeOut")

accounts = lazy_module("chalicelib.services.admin_accounts")
audit = lazy_module("chalicelib.services.audit")
console = lazy_module("chalicelib.services.admin_console")

api = ApiBlueprint(__name__, tag="admin-accounts")


@api.route("GET", "/v1/admin/me", auth="admin", response=MeOut, errors=(401, 403),
           summary="Who is logged in: username and role (owner or staff)")
def me(request: ApiRequest) -> MeOut:
    return MeOut(username=request.principal.subject, role=request.principal.admin_role or "owner")


@api.route("GET", "/v1/admin/accounts", auth="admin", response=AccountList, errors=(401, 403),
           summary="Merchant accounts with their roles (owner only)")
def list_accounts(request: ApiRequest) -> AccountList:
    return AccountList(items=accounts.list_accounts())


@api.route("POST", "/v1/admin/accounts", auth="admin", body=AccountCreate, response=AccountOut, status=201,
           errors=(400, 401, 403, 409), summary="Create a merchant account, owner or staff (owner only; 409 "
                                                "account_exists)")
def create_account(request: ApiRequest) -> AccountOut:
    body = request.body
    return AccountOut(**accounts.create_account(body.username, body.password, body.role))


@api.route("PATCH", "/v1/admin/accounts/{username}", auth="admin", body=AccountPatch, response=AccountOut,
           errors=(400, 401, 403, 404, 409),
           summary="Change an account's role, password or disabled flag (owner only; the last enabled owner "
                   "stays: 409 last_owner)")
def update_account(request: ApiRequest) -> AccountOut:
    body = request.body
    return AccountOut(**accounts.update_account(request.params["username"], body.role, body.password, body.disabled))


@api.route("GET", "/v1/admin/audit", auth="admin", query=AuditQuery, response=AuditList, errors=(400, 401, 403),
           summary="The audit log of admin writes, newest first, by actor and/or target (e.g. order:<id>)")
def list_audit(request: ApiRequest) -> AuditList:
    query = request.query
    items, next_cursor = audit.list_entries(query.actor, query.target, query.limit, query.cursor)
    return AuditList(items=items, next_cursor=next_cursor)


@api.route("GET", "/v1/admin/dashboard", auth="admin", response=DashboardOut, errors=(401, 403),
           summary="Today's orders, paid orders and GMV (Asia/Shanghai), pending shipments, open after-sales, "
                   "alerts of the last 24 hours")
def dashboard(request: ApiRequest) -> DashboardOut:
    return DashboardOut(**console.dashboard())
