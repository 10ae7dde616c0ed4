"""What wx.requestPayment takes: every value a string, as the mini-program API wants."""
from __future__ import annotations

from typing import Literal

from chalicelib.schemas.common import ResponseModel


class RequestPaymentParams(ResponseModel):
    timeStamp: str
    nonceStr: str
    package: str
    signType: Literal["RSA", "MD5", "HMAC-SHA256"]
    paySign: str
