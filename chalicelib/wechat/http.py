"""A small JSON-over-HTTPS client for WeChat's open API, on urllib3.

urllib3 is already loaded by botocore, so this adds nothing to cold start (requests would).
WeChat answers most errors as HTTP 200 with `{"errcode": N, "errmsg": "..."}`; those become
`WeChatApiError`, transport failures `WeChatUnavailable`. Query strings can hold the AppSecret,
so URLs are never logged.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import urllib3

from chalicelib.log import get_logger

log = get_logger(__name__)

_pool = urllib3.PoolManager(num_pools=4, maxsize=8, retries=False)


class WeChatUnavailable(Exception):
    """WeChat could not be reached, timed out, or answered something that is not JSON."""


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
    try:
        response = _pool.request(
            method, url, body=encoded,
            headers={"Content-Type": "application/json; charset=utf-8"} if encoded else None,
            timeout=urllib3.Timeout(connect=min(timeout, 2.0), read=timeout),
        )
    except urllib3.exceptions.HTTPError as error:
        log.warning("wechat request failed", api=api, error=type(error).__name__)
        raise WeChatUnavailable(f"{api}: {type(error).__name__}") from None
    if response.status != 200:
        log.warning("wechat answered an HTTP error", api=api, status=response.status)
        raise WeChatUnavailable(f"{api}: HTTP {response.status}")
    try:
        data = json.loads(response.data)
    except ValueError:
        raise WeChatUnavailable(f"{api}: the answer is not JSON") from None
    if not isinstance(data, dict):
        raise WeChatUnavailable(f"{api}: the answer is not a JSON object")
    errcode = data.get("errcode", 0)
    if errcode not in (0, None):
        log.warning("wechat answered an error", api=api, errcode=errcode, errmsg=str(data.get("errmsg", ""))[:200])
        raise WeChatApiError(int(errcode), str(data.get("errmsg", "")))
    return data
