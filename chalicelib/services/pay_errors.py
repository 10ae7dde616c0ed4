"""Turning WeChat Pay adapter failures into the errors our clients see (502, with WeChat's code)."""
from __future__ import annotations

import contextlib
from typing import Iterator

from chalicelib.errors import UpstreamError
from chalicelib.wechat.pay_types import PayApiError, PaySignatureError, PayUnavailable


@contextlib.contextmanager
def pay_failures_as_app_errors(what: str) -> Iterator[None]:
    try:
        yield
    except PayApiError as error:
        raise UpstreamError(f"WeChat Pay refused the {what} request: {error.message}", code="wechat_pay_error",
                            details=[{"code": error.code}]) from None
    except PaySignatureError:
        raise UpstreamError(f"WeChat Pay's answer to the {what} request did not verify",
                            code="wechat_pay_error") from None
    except PayUnavailable:
        raise UpstreamError(f"WeChat Pay did not answer the {what} request; try again",
                            code="wechat_pay_unavailable") from None
