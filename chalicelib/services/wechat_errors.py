"""Turning WeChat adapter failures into the errors our clients see.

The mapping, deliberately (a WeChat failure is never a 500):

| WeChat                                                                  | our answer                  |
|-------------------------------------------------------------------------|-----------------------------|
| refuses the client's code: 40029 invalid, 40163 already used, 40226     | 401 `invalid_wechat_code`   |
|   high-risk user blocked, 41008 missing                                 |   (call wx.login again)     |
| rate limits: 45011 per-user minute quota, 45009 daily quota             | 429 `wechat_rate_limited`,  |
|                                                                         |   Retry-After: 60           |
| its own system error (-1), or an errcode we do not know                 | 502 `wechat_unavailable`    |
| refuses *our* credentials: appid, secret, IP whitelist, access token,   | 502 `wechat_unavailable`,   |
|   grant type, API not authorised (CREDENTIAL_ERRCODES)                  |   logged as an error        |
| does not answer usefully: refused, timeout, hang-up, HTTP error, not    | 502 `wechat_unavailable`    |
|   the JSON object it documents (chalicelib/wechat/http.py, open_api.py) |                             |

Only the first row is the client's doing, so only it is a 401. -1 says nothing about the code
(WeChat did not consume it: retrying may work), and a credential refusal is ours to fix, so
neither tells the mini-program to log in again. An errcode the client could not have caused is
a 502 whatever it is, with the errcode in `Details` for whoever reads the answer.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from chalicelib.errors import RateLimited, Unauthorized, UpstreamError
from chalicelib.log import get_logger
from chalicelib.wechat.http import WeChatApiError, WeChatUnavailable

log = get_logger(__name__)

# jscode2session / getuserphonenumber: the code the mini-program sent is bad, used, expired or
# belongs to a user WeChat blocks from logging in.
INVALID_CODE_ERRCODES = frozenset({40029, 40163, 40226, 41008})
RATE_LIMIT_ERRCODES = frozenset({45009, 45011})
# WeChat refuses the store's own configuration (WECHAT_APPID / WECHAT_SECRET, the server's IP,
# the access token after its one refresh, an API the mini-program is not authorised for).
CREDENTIAL_ERRCODES = frozenset({40001, 40002, 40013, 40014, 40125, 40164, 41001, 41002, 41004, 42001, 48001})


@contextlib.contextmanager
def wechat_failures_as_app_errors(what: str) -> Iterator[None]:
    try:
        yield
    except WeChatApiError as error:
        if error.errcode in INVALID_CODE_ERRCODES:
            raise Unauthorized(f"The WeChat {what} code is invalid, expired or already used; call wx.login again",
                               code="invalid_wechat_code") from None
        if error.errcode in RATE_LIMIT_ERRCODES:
            raise RateLimited("WeChat is rate limiting this user; retry in a minute",
                              code="wechat_rate_limited", retry_after_seconds=60) from None
        if error.errcode in CREDENTIAL_ERRCODES:
            log.error("WeChat refused the store's credentials: check WECHAT_APPID, WECHAT_SECRET and the "
                      "server IP whitelist", what=what, errcode=error.errcode)
        raise UpstreamError(f"WeChat refused the {what} request (errcode {error.errcode}); try again later",
                            details=[{"errcode": error.errcode}]) from None
    except WeChatUnavailable:
        raise UpstreamError(f"WeChat did not answer the {what} request; try again") from None
