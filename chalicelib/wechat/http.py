"""A small JSON-over-HTTPS client for WeChat's open API, on urllib3.

urllib3 is already loaded by botocore, so this adds nothing to cold start (requests would).
WeChat answers most errors as HTTP 200 with `{"errcode": N, "errmsg": "..."}`; those become
`WeChatApiError`. Anything else that is not the JSON object WeChat documents is
`WeChatUnavailable`: a transport failure (refused, reset, timeout, hang-up), an HTTP status
other than 200, a body over MAX_ANSWER_BYTES, not JSON, not an object, nested beyond what the
parser takes, or an errcode that is not an integer. A WeChat that is not the one we expect
(another host, a proxy's error page) must never make a request fail with a 500. Query strings
can hold the AppSecret, so URLs are never logged.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import urllib3

from chalicelib.log import get_logger

log = get_logger(__name__)

_pool = urllib3.PoolManager(num_pools=4, maxsize=8, retries=False)
# WeChat's answers are a few hundred bytes; anything this large is not WeChat answering.
MAX_ANSWER_BYTES = 1024 * 1024


class WeChatUnavailable(Exception):
    """WeChat could not be reached, timed out, or answered something other than its documented JSON."""


class WeChatApiError(Exception):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(f"WeChat errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


def call_json(method: str, url: str, *, query: dict[str, str] | None = None,
              body: dict[str, Any] | None = None, timeout: float = 5.0, api: str = "") -> dict[str, Any]:
    """Send one request and return the JSON object, raising on transport or WeChat errors."""
    encoded = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
    if query:
        url = f"{url}?{urlencode(query)}"
    status, raw = _send(method, url, encoded, timeout, api)
    if status != 200:
        log.warning("wechat answered an HTTP error", api=api, status=status)
        raise WeChatUnavailable(f"{api}: HTTP {status}")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _garbage(api, "the answer is not JSON") from None
    if not isinstance(data, dict):
        raise _garbage(api, "the answer is not a JSON object")
    errcode = _errcode(data.get("errcode"))
    if errcode is None:
        raise _garbage(api, "the errcode is not an integer")
    if errcode != 0:
        log.warning("wechat answered an error", api=api, errcode=errcode, errmsg=str(data.get("errmsg", ""))[:200])
        raise WeChatApiError(errcode, str(data.get("errmsg", ""))[:500])
    return data


def _send(method: str, url: str, body: bytes | None, timeout: float, api: str) -> tuple[int, bytes]:
    """(HTTP status, body): at most MAX_ANSWER_BYTES + 1 are read, so a huge answer costs no memory."""
    try:
        response = _pool.request(
            method, url, body=body,
            headers={"Content-Type": "application/json; charset=utf-8"} if body else None,
            timeout=urllib3.Timeout(connect=min(timeout, 2.0), read=timeout),
            preload_content=False,
        )
        try:
            raw = response.read(MAX_ANSWER_BYTES + 1)
            if len(raw) > MAX_ANSWER_BYTES:
                response.close()  # the rest is never read, and this connection is not reused
                raise _garbage(api, f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
            response.drain_conn()
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as error:
        log.warning("wechat request failed", api=api, error=type(error).__name__)
        raise WeChatUnavailable(f"{api}: {type(error).__name__}") from None
    return response.status, raw


def _errcode(value: Any) -> int | None:
    """WeChat's errcode as an int (absent or null: 0); None when it is not an integer at all."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        return int(value)
    return None


def _garbage(api: str, what: str) -> WeChatUnavailable:
    log.warning("wechat answered something unusable", api=api, problem=what)
    return WeChatUnavailable(f"{api}: {what}")
