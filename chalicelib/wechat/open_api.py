"""WeChat's server APIs for mini-programs: login, access token, phone number, subscribe messages,
shipping-info upload.

Paths are WeChat's own, under `WECHAT_API_BASE` (the real host by default, the simulator locally).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.wechat.http import WeChatApiError, call_json

# errcodes that mean "this access token is no longer good": refresh and retry once.
ACCESS_TOKEN_ERRCODES = frozenset({40001, 40014, 42001})


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
        try:
            return WeChatSession(openid=str(data["openid"]), session_key=str(data["session_key"]),
                                 unionid=data.get("unionid"))
        except KeyError:
            raise WeChatApiError(-1, "jscode2session answered without openid/session_key") from None

    def fetch_stable_token(self, force_refresh: bool = False) -> AccessToken:
        data = call_json("POST", f"{self._base}/cgi-bin/stable_token", api="stable_token", timeout=self._timeout,
                         body={"grant_type": "client_credential", "appid": self._appid,
                               "secret": self._secret, "force_refresh": force_refresh})
        try:
            return AccessToken(value=str(data["access_token"]), expires_in=int(data["expires_in"]))
        except (KeyError, ValueError):
            raise WeChatApiError(-1, "stable_token answered without access_token/expires_in") from None

    def get_phone_number(self, access_token: str, code: str) -> PhoneNumber:
        data = call_json("POST", f"{self._base}/wxa/business/getuserphonenumber", api="getuserphonenumber",
                         query={"access_token": access_token}, body={"code": code}, timeout=self._timeout)
        info = data.get("phone_info") or {}
        try:
            return PhoneNumber(phone_number=str(info["phoneNumber"]), pure_phone_number=str(info["purePhoneNumber"]),
                               country_code=str(info.get("countryCode", "86")))
        except KeyError:
            raise WeChatApiError(-1, "getuserphonenumber answered without phone_info") from None

    def send_subscribe_message(self, access_token: str, message: dict[str, Any]) -> int:
        """Send one subscribe message (`touser`, `template_id`, `data`, ...); returns WeChat's msgid."""
        data = call_json("POST", f"{self._base}/cgi-bin/message/subscribe/send", api="subscribe_send",
                         query={"access_token": access_token}, body=message, timeout=self._timeout)
        return int(data.get("msgid", 0))

    def upload_shipping_info(self, access_token: str, body: dict[str, Any]) -> None:
        """Tell WeChat an order was shipped (发货信息录入): `order_key`, `logistics_type`,
        `delivery_mode`, `shipping_list`, `upload_time`, `payer`. Raises WeChatApiError on a refusal."""
        call_json("POST", f"{self._base}/wxa/sec/order/upload_shipping_info", api="upload_shipping_info",
                  query={"access_token": access_token}, body=body, timeout=self._timeout)
