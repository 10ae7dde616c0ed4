"""Logging in and out: mini-program users with a wx.login code, merchants with a password."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest, Reply
from chalicelib.lazy import lazy_module, lazy_names
AdminLoginBody, AdminLoginReply, LoginBody, LoginReply, UserProfile = lazy_names(
    "chalicelib.schemas.users", "AdminLoginBody", "AdminLoginReply", "LoginBody", "LoginReply", "UserProfile")

auth = lazy_module("chalicelib.services.auth")

api = ApiBlueprint(__name__, tag="auth")


@api.route("POST", "/v1/auth/login", auth=None, body=LoginBody, response=LoginReply, errors=(400, 401, 429, 502),
           summary="Exchange a wx.login code for a bearer token (creates the user on first login)")
def log_in(request: ApiRequest) -> LoginReply:
    login = auth.log_in_with_wechat(request.body.code)
    return LoginReply(token=login.issued.token, expires_in=login.issued.expires_in,
                      user=UserProfile.of(login.user), is_new_user=login.user.is_new)


@api.route("POST", "/v1/auth/logout", status=204, errors=(401,),
           summary="Revoke the token used for this call")
def log_out(request: ApiRequest) -> Reply:
    auth.log_out(request.principal)
    return Reply(None, 204)


@api.route("POST", "/v1/admin/auth/login", auth=None, body=AdminLoginBody, response=AdminLoginReply,
           errors=(400, 401), summary="Merchant login -> an admin bearer token")
def log_in_admin(request: ApiRequest) -> AdminLoginReply:
    issued = auth.log_in_admin(request.body.username, request.body.password)
    return AdminLoginReply(token=issued.token, expires_in=issued.expires_in)


@api.route("POST", "/v1/admin/auth/logout", auth="admin", status=204, errors=(401, 403),
           summary="Revoke the admin token used for this call")
def log_out_admin(request: ApiRequest) -> Reply:
    auth.log_out(request.principal)
    return Reply(None, 204)
