"""One-time subscribe-message quota, as WeChat keeps it (一次性订阅).

In WeChat a user's `wx.requestSubscribeMessage` "accept" for a template lets the app send that
user ONE message of that template; a send without such an acceptance answers errcode 43101
("user refuse to accept the msg") and a successful send uses one acceptance up. The simulator
cannot see the mini-program, so a test records the acceptance itself:

    POST /__sim/subscribe/accept   {"openid", "template_id", "appid"?, "times"? (default 1)}
    GET  /__sim/subscribe/quota    ?openid=&template_id=   -> {"items": [{appid, openid, template_id, remaining}]}
    GET  /__sim/subscribe/log      ?touser=                -> every send attempt checked here, with its outcome
    POST /__sim/subscribe/enforce  {"enabled": bool}       -> switch the check on or off

Checking is on when the simulator is started with `subscribe_quota=True` (CLI
`--subscribe-quota`) or switched on by /__sim/subscribe/enforce; it is off by default so that
tools that only want messages recorded need not grant anything. `/__sim/reset` forgets every
acceptance and goes back to the start-up setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .server import Request, Response, Router, json_response
from .state import SimState

MAX_TIMES = 1000
REFUSED = (43101, "user refuse to accept the msg")


@dataclass
class QuotaBook:
    enforce: bool
    grants: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (appid, openid, template) -> left
    attempts: list[dict[str, Any]] = field(default_factory=list)


def book(state: SimState) -> QuotaBook:
    return state.namespace("subscribe_quota", lambda: QuotaBook(enforce=state.knobs.subscribe_quota))


def take(state: SimState, appid: str, body: dict[str, Any]) -> tuple[int, str] | None:
    """Called by subscribe/send (under state.lock) once the message is valid: uses one
    acceptance up, or answers 43101 when there is none and checking is on."""
    quota = book(state)
    key = (appid, body["touser"], body["template_id"])
    outcome = "sent"
    if quota.enforce:
        if quota.grants.get(key, 0) <= 0:
            outcome = "refused"
        else:
            quota.grants[key] -= 1
    quota.attempts.append({"appid": appid, "touser": key[1], "template_id": key[2], "outcome": outcome,
                           "enforced": quota.enforce, "at": state.now()})
    return REFUSED if outcome == "refused" else None


def register(router: Router) -> None:
    router.add("POST", "/__sim/subscribe/accept", accept)
    router.add("GET", "/__sim/subscribe/quota", list_quota)
    router.add("GET", "/__sim/subscribe/log", attempts)
    router.add("POST", "/__sim/subscribe/enforce", enforce)


def _bad(message: str) -> Response:
    return json_response({"ok": False, "error": message}, status=400)


def accept(req: Request) -> Response:
    body, state = req.json_object(), req.state
    appid = body.get("appid") or next(iter(state.apps))
    openid, template_id, times = body.get("openid"), body.get("template_id"), body.get("times", 1)
    if appid not in state.apps:
        return _bad("unknown appid")
    if not isinstance(template_id, str) or not template_id.strip():
        return _bad("template_id must be a non-empty string")
    if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= MAX_TIMES:
        return _bad(f"times must be 1..{MAX_TIMES}")
    with state.lock:
        if not isinstance(openid, str) or openid not in state.data.openids.get(appid, set()):
            return _bad("openid was never issued for this app (log the user in first)")
        quota = book(state)
        key = (appid, openid, template_id)
        quota.grants[key] = quota.grants.get(key, 0) + times
        left = quota.grants[key]
    return json_response({"ok": True, "appid": appid, "openid": openid, "template_id": template_id,
                          "remaining": left})


def list_quota(req: Request) -> Response:
    openid, template_id = req.query.get("openid"), req.query.get("template_id")
    with req.state.lock:
        items = [{"appid": appid, "openid": user, "template_id": template, "remaining": left}
                 for (appid, user, template), left in book(req.state).grants.items()
                 if openid in (None, user) and template_id in (None, template)]
    return json_response({"items": items})


def attempts(req: Request) -> Response:
    touser = req.query.get("touser")
    with req.state.lock:
        items = [dict(item) for item in book(req.state).attempts if touser in (None, item["touser"])]
    return json_response({"items": items})


def enforce(req: Request) -> Response:
    enabled = req.json_object().get("enabled")
    if not isinstance(enabled, bool):
        return _bad("enabled must be true or false")
    with req.state.lock:
        book(req.state).enforce = enabled
    return json_response({"ok": True, "enforce": enabled})
