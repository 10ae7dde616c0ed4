"""Test/dev-only control endpoints under /__sim/ (never part of WeChat).

They let a test inspect what the backend sent (messages, call counts, issued
session keys) and make the fake WeChat misbehave (faults, time travel).
Routes here are registered without a name, so they are neither counted nor
subject to fault injection.
"""

from __future__ import annotations

from typing import Any

from .identity import is_valid_code, openid_for, unionid_for
from .server import Request, Response, Router, json_response
from .state import MAX_FAULT_DELAY_MS, MAX_FAULT_TIMES, Fault


def register(router: Router) -> None:
    router.add("GET", "/__sim/health", lambda req: json_response({"ok": True}))
    router.add("GET", "/__sim/messages", messages)
    router.add("GET", "/__sim/stats", lambda req: stats(req, router))
    router.add("GET", "/__sim/faults", list_faults)
    router.add("POST", "/__sim/faults", lambda req: add_fault(req, router))
    router.add("POST", "/__sim/reset", reset)
    router.add("GET", "/__sim/session-keys", session_keys)
    router.add("GET", "/__sim/openid", openid_preview)
    router.add("POST", "/__sim/advance-time", advance_time)


def _bad(message: str) -> Response:
    return json_response({"ok": False, "error": message}, status=400)


def messages(req: Request) -> Response:
    touser = req.query.get("touser")
    with req.state.lock:
        items = [dict(m) for m in req.state.data.messages
                 if touser is None or m["touser"] == touser]
    return json_response({"items": items})


def stats(req: Request, router: Router) -> Response:
    """Call counts per named endpoint (faulted and failed calls included)."""
    return json_response({"calls": req.state.calls(router.endpoint_names())})


def list_faults(req: Request) -> Response:
    return json_response({"items": req.state.pending_faults()})


def add_fault(req: Request, router: Router) -> Response:
    body = req.json_object()
    endpoint = body.get("endpoint")
    if endpoint not in router.endpoint_names():
        return _bad(f"endpoint must be one of {router.endpoint_names()}")
    spec: dict[str, Any] = {
        "errcode": body.get("errcode", -1),
        "errmsg": body.get("errmsg", "system error"),
        "times": body.get("times", 1),
        "http_status": body.get("http_status", 200),
        "delay_ms": body.get("delay_ms", 0),
    }
    ints = ("times", "http_status", "delay_ms")
    if any(isinstance(spec[k], bool) or not isinstance(spec[k], int) for k in ints):
        return _bad("times, http_status and delay_ms must be integers")
    if spec["errcode"] is not None and (isinstance(spec["errcode"], bool)
                                        or not isinstance(spec["errcode"], int)):
        return _bad("errcode must be an integer or null")
    if not isinstance(spec["errmsg"], str):
        return _bad("errmsg must be a string")
    if not 1 <= spec["times"] <= MAX_FAULT_TIMES:
        return _bad(f"times must be 1..{MAX_FAULT_TIMES}")
    if not 0 <= spec["delay_ms"] <= MAX_FAULT_DELAY_MS:
        return _bad(f"delay_ms must be 0..{MAX_FAULT_DELAY_MS}")
    if not 200 <= spec["http_status"] <= 599:
        return _bad("http_status must be 200..599")
    fault = Fault(endpoint=endpoint, **spec)
    req.state.add_fault(fault)
    return json_response({"ok": True, "fault": fault.as_dict()})


def reset(req: Request) -> Response:
    req.state.reset()
    return json_response({"ok": True})


def session_keys(req: Request) -> Response:
    with req.state.lock:
        keys = [entry["session_key"] for entry in req.state.data.session_keys]
    return json_response({"items": keys})


def openid_preview(req: Request) -> Response:
    """openid/unionid a login code *would* map to, without consuming it."""
    appid = req.query.get("appid") or next(iter(req.state.apps))
    code = req.query.get("code", "")
    if not is_valid_code(code):
        return _bad("code must be 1..128 chars of [A-Za-z0-9_.-]")
    return json_response({"appid": appid, "openid": openid_for(appid, code),
                          "unionid": unionid_for(code)})


def advance_time(req: Request) -> Response:
    """Move the simulator clock forward (e.g. to expire tokens) from another process."""
    seconds = req.json_object().get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        return _bad("seconds must be a non-negative number")
    req.state.advance(seconds)
    return json_response({"ok": True, "now": req.state.now()})
