"""WeChat open-API endpoints used by the store backend.

Paths, parameters and JSON shapes follow developers.weixin.qq.com:
  GET  /sns/jscode2session                       (code2Session)
  POST /cgi-bin/stable_token                     (getStableAccessToken)
  POST /wxa/business/getuserphonenumber          (getPhoneNumber)
  POST /cgi-bin/message/subscribe/send           (subscribeMessage.send)
Errors are HTTP 200 with {"errcode", "errmsg"}, exactly as WeChat answers.
"""

from __future__ import annotations

from collections import deque

from . import subscribe_quota, subscribe_rules
from .identity import (
    is_valid_code,
    new_access_token,
    new_session_key,
    openid_for,
    phone_for,
    unionid_for,
)
from .server import Request, Response, Router, json_response, wx_error
from .state import SimState, Token

RATE_WINDOW_S = 60.0


def register(router: Router) -> None:
    router.add("GET", "/sns/jscode2session", jscode2session, name="jscode2session")
    router.add("POST", "/cgi-bin/stable_token", stable_token, name="stable_token")
    router.add("POST", "/wxa/business/getuserphonenumber", get_user_phone_number,
               name="getuserphonenumber")
    router.add("POST", "/cgi-bin/message/subscribe/send", subscribe_send, name="subscribe_send")


def _check_app(state: SimState, appid: object, secret: object) -> Response | None:
    if not isinstance(appid, str) or appid not in state.apps:
        return wx_error(40013, "invalid appid")
    if secret != state.apps[appid]:
        return wx_error(40125, "invalid appsecret")
    return None


def jscode2session(req: Request) -> Response:
    q, state = req.query, req.state
    error = _check_app(state, q.get("appid"), q.get("secret"))
    if error:
        return error
    if q.get("grant_type") != "authorization_code":
        return wx_error(40002, "invalid grant_type")
    appid, code = q["appid"], q.get("js_code")
    with state.lock:
        data = state.data
        if not is_valid_code(code) or code in data.used_codes:
            return wx_error(40029, "invalid code")
        openid = openid_for(appid, code)
        now = state.now()
        # Sliding one-minute window of *successful* logins for this user.
        window = data.login_times.setdefault((appid, openid), deque())
        while window and window[0] <= now - RATE_WINDOW_S:
            window.popleft()
        if len(window) >= state.knobs.code2session_per_minute:
            # Code is not consumed: the client may retry it next minute.
            return wx_error(45011, "api minute-quota reach limit  mustslower  retry next minute")
        window.append(now)
        data.used_codes.add(code)
        data.openids.setdefault(appid, set()).add(openid)
        session_key = new_session_key()
        # Recorded only so tests can assert the backend never leaks it.
        data.session_keys.append(
            {"appid": appid, "openid": openid, "session_key": session_key, "issued_at": now}
        )
    # No errcode on success: that is what WeChat sends.
    return json_response(
        {"session_key": session_key, "openid": openid, "unionid": unionid_for(code)}
    )


def stable_token(req: Request) -> Response:
    body = req.json_object()
    state = req.state
    error = _check_app(state, body.get("appid"), body.get("secret"))
    if error:
        return error
    if body.get("grant_type") != "client_credential":
        return wx_error(40002, "invalid grant_type")
    appid = body["appid"]
    force = body.get("force_refresh") is True
    with state.lock:
        data, now = state.data, state.now()
        current = data.tokens.get(data.current_token.get(appid, ""))
        if force or current is None or current.expires_at <= now:
            if current is not None and current.expires_at > now:
                # The replaced token keeps working for a short grace period
                # so in-flight calls elsewhere do not fail mid-rotation.
                current.expires_at = min(current.expires_at, now + state.knobs.token_grace_s)
            token = new_access_token()
            data.tokens[token] = Token(appid=appid, expires_at=now + state.knobs.token_ttl)
            data.current_token[appid] = token
            _prune_tokens(state, now)
        token = data.current_token[appid]
        expires_in = max(1, int(data.tokens[token].expires_at - now))
    return json_response({"access_token": token, "expires_in": expires_in})


def _prune_tokens(state: SimState, now: float) -> None:
    """Drop dead tokens so a long-running simulator does not grow forever."""
    dead = [t for t, info in state.data.tokens.items() if info.expires_at <= now]
    for token in dead:
        del state.data.tokens[token]


def _token_appid(req: Request) -> str | Response:
    """Resolve ?access_token= to its appid, or the WeChat error for it."""
    token = req.query.get("access_token")
    if not token:
        return wx_error(41001, "access_token missing")
    state = req.state
    with state.lock:
        info = state.data.tokens.get(token)
        if info is None or info.expires_at <= state.now():
            return wx_error(40001, "invalid credential, access_token is invalid or not latest")
        return info.appid


def get_user_phone_number(req: Request) -> Response:
    appid = _token_appid(req)
    if isinstance(appid, Response):
        return appid
    code = req.json_object().get("code")
    state = req.state
    with state.lock:
        if not is_valid_code(code) or code in state.data.used_phone_codes:
            return wx_error(40029, "invalid code")
        state.data.used_phone_codes.add(code)
        now = state.now()
    phone = phone_for(code)
    return json_response({
        "errcode": 0,
        "errmsg": "ok",
        "phone_info": {
            "phoneNumber": phone,       # mainland numbers carry no "+86"
            "purePhoneNumber": phone,
            "countryCode": "86",
            "watermark": {"timestamp": int(now), "appid": appid},
        },
    })


def subscribe_send(req: Request) -> Response:
    appid = _token_appid(req)
    if isinstance(appid, Response):
        return appid
    body = req.json_object()
    state = req.state
    with state.lock:
        problem = subscribe_rules.validate(body, state.data.openids.get(appid, set()))
        if problem:
            return wx_error(*problem)
        refused = subscribe_quota.take(state, appid, body)  # one-time quota, as WeChat counts it
        if refused:
            return wx_error(*refused)
        msgid = state.data.next_msgid
        state.data.next_msgid += 1
        state.data.messages.append({
            "msgid": msgid,
            "appid": appid,
            "touser": body["touser"],
            "template_id": body["template_id"],
            "page": body.get("page"),
            "data": body["data"],
            "miniprogram_state": body.get("miniprogram_state", "formal"),
            "lang": body.get("lang", "zh_CN"),
            "received_at": state.now(),
        })
    return json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})
