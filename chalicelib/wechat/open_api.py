"""WeChat's server APIs for mini-programs: login, access token, phone number, subscribe messages,
shipping-info upload.

Paths are WeChat's own, under `WECHAT_API_BASE` (the real host by default, the simulator locally).
A success answer missing a field we need, or holding one of the wrong type or size, is
`WeChatUnavailable` (what the caller sees as 502 wechat_unavailable), never stored as it is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.wechat.http import WeChatUnavailable, call_json

# errcodes that mean "this access token is no longer good": refresh and retry once.
ACCESS_TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
# WeChat's openid, unionid and session_key are 24-32 characters; access tokens up to 512.
MAX_ID_LENGTH = 128
MAX_TOKEN_LENGTH = 2048


def _text(data: dict[str, Any], name: str, api: str, *, max_length: int = MAX_ID_LENGTH,
          optional: bool = False) -> str | None:
    """A non-empty string field of a success answer, or WeChatUnavailable."""
    value = data.get(name)
    if optional and value in (None, ""):
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise WeChatUnavailable(f"{api}: the answer has no usable {name}")
    return value


@dataclass(frozen=True)
class WeChatSession:
    openid: str
    session_key: str
    unionid: str | None


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_in: int


@dataclass(frozen=True)
class PhoneNumber:
    phone_number: str  # with country code when not mainland
    pure_phone_number: str
    country_code: str


class WeChatOpenApi:
    def __init__(self, base_url: str, appid: str, secret: str, timeout: float = 5.0):
        self._base = base_url.rstrip("/")
        self._appid = appid
        self._secret = secret
        self._timeout = timeout

    def code_to_session(self, code: str) -> WeChatSession:
        data = call_json("GET", f"{self._base}/sns/jscode2session", api="jscode2session", timeout=self._timeout,
                         query={"appid": self._appid, "secret": self._secret, "js_code": code,
                                "grant_type": "authorization_code"})
        api = "jscode2session"
        return WeChatSession(openid=_text(data, "openid", api), session_key=_text(data, "session_key", api),
                             unionid=_text(data, "unionid", api, optional=True))

    def fetch_stable_token(self, force_refresh: bool = False) -> AccessToken:
        data = call_json("POST", f"{self._base}/cgi-bin/stable_token", api="stable_token", timeout=self._timeout,
                         body={"grant_type": "client_credential", "appid": self._appid,
                               "secret": self._secret, "force_refresh": force_refresh})
        expires_in = data.get("expires_in")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 0 < expires_in <= 30 * 86400:
            raise WeChatUnavailable("stable_token: the answer has no usable expires_in")
        return AccessToken(value=_text(data, "access_token", "stable_token", max_length=MAX_TOKEN_LENGTH),
                           expires_in=expires_in)

    def get_phone_number(self, access_token: str, code: str) -> PhoneNumber:
        data = call_json("POST", f"{self._base}/wxa/business/getuserphonenumber", api="getuserphonenumber",
                         query={"access_token": access_token}, body={"code": code}, timeout=self._timeout)
        api = "getuserphonenumber"
        info = data.get("phone_info")
        if not isinstance(info, dict):
            raise WeChatUnavailable(f"{api}: the answer has no usable phone_info")
        return PhoneNumber(phone_number=_text(info, "phoneNumber", api, max_length=32),
                           pure_phone_number=_text(info, "purePhoneNumber", api, max_length=32),
                           country_code=_text({"countryCode": "86", **info}, "countryCode", api, max_length=8))

    def send_subscribe_message(self, access_token: str, message: dict[str, Any]) -> int:
        """Send one subscribe message (`touser`, `template_id`, `data`, ...); returns WeChat's msgid."""
        data = call_json("POST", f"{self._base}/cgi-bin/message/subscribe/send", api="subscribe_send",
                         query={"access_token": access_token}, body=message, timeout=self._timeout)
        msgid = data.get("msgid", 0)
        return msgid if isinstance(msgid, int) and not isinstance(msgid, bool) else 0

    def upload_shipping_info(self, access_token: str, body: dict[str, Any]) -> None:
        """Tell WeChat an order was shipped (发货信息录入): `order_key`, `logistics_type`,
        `delivery_mode`, `shipping_list`, `upload_time`, `payer`. Raises WeChatApiError on a refusal."""
        call_json("POST", f"{self._base}/wxa/sec/order/upload_shipping_info", api="upload_shipping_info",
                  query={"access_token": access_token}, body=body, timeout=self._timeout)
