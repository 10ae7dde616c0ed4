"""CORS for the origins in CORS_ALLOW_ORIGINS (default none): echo an allowed Origin, never `*`.

The mini-program itself needs no CORS (wx.request is not a browser); a browser console on a
configured origin does, and its calls carry Authorization, so each path also answers the
preflight OPTIONS. Chalice's own `cors=` allows one origin per route; this allows several.
"""
from __future__ import annotations

from chalice import Response
from chalice.app import Request

from chalicelib.settings import get_settings

ALLOWED_HEADERS = "Authorization, Content-Type"
MAX_AGE_SECONDS = 600


def origin_headers(request: Request) -> dict[str, str]:
    """Access-Control-Allow-Origin for a configured origin; nothing for any other."""
    origin = (request.headers or {}).get("origin")
    if origin and origin in get_settings().cors_allow_origins:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


def preflight(request: Request, methods: list[str]) -> Response:
    """204 to OPTIONS; the Access-Control-* headers only for a configured origin."""
    allowed = ", ".join([*methods, "OPTIONS"])
    headers = {"Allow": allowed}
    granted = origin_headers(request)
    if granted:
        headers.update(granted)
        headers.update({"Access-Control-Allow-Methods": allowed, "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                        "Access-Control-Max-Age": str(MAX_AGE_SECONDS)})
    return Response(body="", status_code=204, headers=headers)
