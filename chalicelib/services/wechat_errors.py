"""Turning WeChat adapter failures into the errors our clients see."""
from __future__ import annotations

import contextlib
from typing import Iterator

from chalicelib.errors import RateLimited, Unauthorized, UpstreamError
from chalicelib.wechat.http import WeChatApiError, WeChatUnavailable

# jscode2session / getuserphonenumber: the code the mini-program sent is bad, used or expired.
INVALID_CODE_ERRCODES = frozenset({40029, 40163, 40226})
RATE_LIMIT_ERRCODES = frozenset({45009, 45011})


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
        raise UpstreamError(f"WeChat refused the {what} request (errcode {error.errcode})",
                            details=[{"errcode": error.errcode}]) from None
    except WeChatUnavailable:
        raise UpstreamError(f"WeChat did not answer the {what} request; try again") from None
