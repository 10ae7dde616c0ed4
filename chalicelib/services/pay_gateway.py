"""WeChat Pay as the services see it, whichever version is configured (WECHAT_PAY_VERSION).

One small interface over the v3 and v2 adapters: prepay and the wx.requestPayment parameters,
query, close, refund, and parsing each callback. Built once per process from Settings.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Mapping

from typing import TYPE_CHECKING

from chalicelib import clock
from chalicelib.pay_routes import V2_NOTIFY_ROUTE, V2_REFUND_NOTIFY_ROUTE, V3_NOTIFY_ROUTE
from chalicelib.settings import PaySettings, get_settings
from chalicelib.wechat.pay_types import PaymentNotification, PayProtocolNotConfigured, Refund, Transaction

if TYPE_CHECKING:
    from chalicelib.wechat import pay_v2, pay_v3

# The Pay adapters (and `cryptography`, ~60 ms) are imported on first use, not at cold start:
# most requests of a warm store never touch WeChat Pay.



@dataclass(frozen=True)
class PayGateway:
    version: str
    appid: str
    mch_id: str
    notify_base: str
    v3: pay_v3.PayV3Client | None
    v3_config: pay_v3.PayV3Config | None
    v2: pay_v2.PayV2Client | None
    api_key: str

    def prepay(self, out_trade_no: str, description: str, amount_fen: int, openid: str, time_expire,
               client_ip: str, profit_sharing: bool = False) -> str:
        if self.v3:
            return self.v3.prepay_jsapi(out_trade_no, description, amount_fen, openid, time_expire,
                                        self.notify_base + V3_NOTIFY_ROUTE, profit_sharing=profit_sharing)
        return self.v2.unifiedorder(out_trade_no, description, amount_fen, openid, time_expire,
                                    self.notify_base + V2_NOTIFY_ROUTE, client_ip)

    def request_payment_params(self, prepay_id: str) -> dict[str, str]:
        """What wx.requestPayment takes: timeStamp, nonceStr, package, signType, paySign (strings)."""
        from chalicelib.wechat import pay_v2, pay_v3

        if self.v3:
            return pay_v3.jsapi_pay_params(self.appid, prepay_id, self.v3_config.merchant_private_key_pem)
        return pay_v2.jsapi_pay_params_v2(self.appid, prepay_id, self.api_key)

    def query(self, out_trade_no: str) -> Transaction:
        return self.v3.query(out_trade_no) if self.v3 else self.v2.orderquery(out_trade_no)

    def close(self, out_trade_no: str) -> None:
        if self.v3:
            self.v3.close(out_trade_no)
        else:
            self.v2.closeorder(out_trade_no)

    def refund(self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int, reason: str) -> Refund:
        if self.v3:
            return self.v3.refund(out_trade_no, out_refund_no, refund_fen, total_fen, reason,
                                  self.notify_base + V3_NOTIFY_ROUTE)
        return self.v2.refund(out_trade_no, out_refund_no, refund_fen, total_fen, reason,
                              self.notify_base + V2_REFUND_NOTIFY_ROUTE)

    def parse_v3_notify(self, headers: Mapping[str, str], body: bytes) -> PaymentNotification:
        from chalicelib.wechat import pay_v3

        if self.v3_config is None or len(self.v3_config.apiv3_key.encode("utf-8")) != 32:
            raise PayProtocolNotConfigured("WeChat Pay v3 is not configured here")
        return pay_v3.parse_notify(headers, body, self.v3_config, clock.now())

    def parse_v2_pay_notify(self, body: bytes) -> PaymentNotification:
        from chalicelib.wechat import pay_v2

        return pay_v2.parse_pay_notify(body, self._v2_key())

    def parse_v2_refund_notify(self, body: bytes) -> PaymentNotification:
        from chalicelib.wechat import pay_v2

        return pay_v2.parse_refund_notify(body, self._v2_key())

    def _v2_key(self) -> str:
        """The v2 API key, only on a v2 store. A v3 store may still hold a v2 key (a merchant
        moving between versions), but WeChat sends it v3 notifies only: a v2 one is a forgery."""
        if self.version != "v2" or len(self.api_key) != 32:
            raise PayProtocolNotConfigured("WeChat Pay v2 is not configured here")
        return self.api_key


def _v3_config(pay: PaySettings) -> pay_v3.PayV3Config:
    from chalicelib.wechat import pay_v3
    from chalicelib.wechat.pay_http import load_pem_or_path, split_pem

    settings = get_settings()
    return pay_v3.PayV3Config(
        mchid=pay.mch_id, appid=settings.wechat_appid, api_base=pay.api_base,
        merchant_private_key_pem=load_pem_or_path(pay.private_key), merchant_cert_serial=pay.cert_serial,
        apiv3_key=pay.apiv3_key,
        platform_certs_pem=tuple(split_pem(load_pem_or_path(pay.platform_certs))) if pay.platform_certs else (),
        platform_public_key_pem=load_pem_or_path(pay.public_key) if pay.public_key else None,
        platform_public_key_id=pay.public_key_id or None,
    )


@functools.lru_cache(maxsize=1)
def gateway() -> PayGateway:
    from chalicelib.wechat import pay_v2, pay_v3
    from chalicelib.wechat.pay_http import load_pem_or_path

    settings = get_settings()
    pay = settings.pay
    v3_config = _v3_config(pay) if pay.version == "v3" else None
    v2 = None if v3_config else pay_v2.PayV2Client(
        settings.wechat_appid, pay.mch_id, pay.api_key, api_base=pay.api_base,
        client_cert_pem=load_pem_or_path(pay.client_cert) if pay.client_cert else None,
        client_key_pem=load_pem_or_path(pay.client_key) if pay.client_key else None,
        timeout=settings.wechat_http_timeout_seconds)
    return PayGateway(version=pay.version, appid=settings.wechat_appid, mch_id=pay.mch_id,
                      notify_base=pay.notify_url, v3=pay_v3.PayV3Client(v3_config) if v3_config else None,
                      v3_config=v3_config, v2=v2, api_key=pay.api_key)


def reset_gateway() -> None:
    gateway.cache_clear()
