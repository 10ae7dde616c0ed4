"""WeChat Pay APIv2 (XML; MD5 or HMAC-SHA256 signs), used when WECHAT_PAY_VERSION=v2.

What wechatpy does and what is ours:
- request XML is wechatpy's `dict_to_xml`, imported when a v2 request is made: importing wechatpy
  costs ~0.2 s, which only a v2 call should add to a cold Lambda;
- signs are computed and checked here, for both directions: wechatpy 1.8.18 only checks MD5, and
  one function for what we send and what we accept means the two cannot disagree;
- XML is parsed here with the stdlib behind a DOCTYPE/ENTITY guard (wechatpy's xmltodict has none);
- refund `req_info` is decrypted here on `cryptography` (AES-256-ECB, key = md5(API key) hex).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any, Mapping
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from chalicelib import clock
from chalicelib.log import get_logger
from chalicelib.wechat import pay_http
from chalicelib.wechat.pay_http import new_nonce, to_china_time
from chalicelib.wechat.pay_types import (
    PayApiError, PaymentNotification, PayNotifyUnsupported, PaySignatureError, PayUnavailable, Refund, Transaction,
    refund_from_v2, transaction_from_v2,
)

log = get_logger(__name__)

SIGN_TYPES = ("MD5", "HMAC-SHA256")


class MalformedXml(PaySignatureError):
    """Not well-formed XML (or not UTF-8): nothing in it can be verified."""


class UnsafeXml(PaySignatureError):
    """XML with a DOCTYPE or ENTITY declaration (XXE, entity bombs): refused before parsing."""


# ---------------------------------------------------------------- signs

def sign_v2(params: Mapping[str, Any], api_key: str, sign_type: str = "MD5") -> str:
    """Sorted `k=v&...` without `sign` and empty values, + `&key=API_KEY`; MD5 or HMAC-SHA256
    (keyed by the API key, over the string that already ends in the key), upper-case hex."""
    string_a = "&".join(f"{name}={params[name]}" for name in sorted(params)
                        if name != "sign" and params[name] not in (None, ""))
    temp = f"{string_a}&key={api_key}".encode("utf-8")
    if sign_type == "MD5":
        return hashlib.md5(temp).hexdigest().upper()
    if sign_type == "HMAC-SHA256":
        return hmac.new(api_key.encode("utf-8"), temp, hashlib.sha256).hexdigest().upper()
    raise ValueError(f"unsupported sign_type {sign_type!r}")


def verify_sign_v2(params: Mapping[str, Any], api_key: str, sign_type: str | None = None) -> None:
    """Raise PaySignatureError unless `params["sign"]` is right for `sign_type` (default: the
    `sign_type` the message names, else MD5)."""
    sign_type = sign_type or str(params.get("sign_type") or "MD5")
    _require_api_key(api_key)
    if sign_type not in SIGN_TYPES:
        raise PaySignatureError(f"unsupported sign_type {sign_type!r}")
    given = str(params.get("sign") or "").upper().encode("utf-8")
    if not given or not hmac.compare_digest(given, sign_v2(params, api_key, sign_type).encode("ascii")):
        raise PaySignatureError("the sign does not verify")


def jsapi_pay_params_v2(appid: str, prepay_id: str, api_key: str, sign_type: str = "MD5",
                        timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """`wx.requestPayment` parameters, all strings; paySign over appId,nonceStr,package,signType,timeStamp."""
    params = {"appId": appid, "timeStamp": str(clock.epoch_seconds() if timestamp is None else timestamp),
              "nonceStr": nonce or new_nonce(), "package": f"prepay_id={prepay_id}", "signType": sign_type}
    pay_sign = sign_v2(params, api_key, sign_type)
    return {"timeStamp": params["timeStamp"], "nonceStr": params["nonceStr"], "package": params["package"],
            "signType": sign_type, "paySign": pay_sign}


# ---------------------------------------------------------------- XML and req_info

def parse_xml(data: bytes | str) -> dict[str, str]:
    """A flat WeChat XML document as {tag: text}, refusing DTDs and entities outright.

    Bytes must be UTF-8 and are decoded first: a str given to expat overrides any encoding
    declaration, so a UTF-16 document cannot slip a DOCTYPE past the guard.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise MalformedXml("the XML is not UTF-8") from None
    lowered = text.lower()
    if "<!doctype" in lowered or "<!entity" in lowered:
        raise UnsafeXml("DOCTYPE/ENTITY declarations are refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise MalformedXml("the XML is not well-formed") from None
    fields: dict[str, str] = {}
    for child in root:
        if child.tag in fields:  # two values for one name: which one was signed is ambiguous
            raise MalformedXml(f"duplicate field {child.tag}")
        fields[child.tag] = child.text or ""
    return fields


def parse_notify_xml(body: bytes, api_key: str, default_sign_type: str = "MD5") -> dict[str, str]:
    """Parse a signed v2 notify safely and check its sign with the sign_type it names (else the default)."""
    fields = parse_xml(body)
    verify_sign_v2(fields, api_key, fields.get("sign_type") or default_sign_type)
    return fields


def aes_ecb_encrypt(key: bytes, plaintext: bytes) -> bytes:
    padder = sym_padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305  (WeChat's scheme)
    return encryptor.update(padder.update(plaintext) + padder.finalize()) + encryptor.finalize()


def aes_ecb_decrypt(key: bytes, ciphertext: bytes) -> bytes:
    """Raises ValueError on a wrong length or bad padding."""
    decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()  # noqa: S305
    unpadder = sym_padding.PKCS7(128).unpadder()
    return unpadder.update(decryptor.update(ciphertext) + decryptor.finalize()) + unpadder.finalize()


def _require_api_key(api_key: str) -> None:
    """WeChat's v2 API keys are 32 characters. Verifying with anything else (above all an empty
    key: `...&key=` is a valid MD5 input, and md5("") a valid AES key) would accept forgeries."""
    if len(api_key or "") != 32:
        raise PaySignatureError("no v2 API key of 32 characters is configured: nothing can verify")


def _refund_key(api_key: str) -> bytes:
    return hashlib.md5(api_key.encode("utf-8")).hexdigest().encode("ascii")  # 32 ASCII bytes: AES-256


def decrypt_refund_req_info(req_info: str, api_key: str) -> dict[str, str]:
    """The refund notify's `req_info` as {field: value}. Refund notifies carry no sign: decrypting
    with our key to well-formed XML is what authenticates them, so any failure is PaySignatureError."""
    _require_api_key(api_key)
    try:
        plain = aes_ecb_decrypt(_refund_key(api_key), base64.b64decode(req_info, validate=True)).decode("utf-8")
    except (binascii.Error, ValueError):
        raise PaySignatureError("req_info does not decrypt with our API key") from None
    return parse_xml(plain)


def encrypt_refund_req_info(xml_text: str, api_key: str) -> str:
    """The inverse, for simulators and tests."""
    return base64.b64encode(aes_ecb_encrypt(_refund_key(api_key), xml_text.encode("utf-8"))).decode("ascii")


def notify_reply(ok: bool, message: str = "") -> bytes:
    """The answer WeChat expects to a v2 notify."""
    if ok:
        return b"<xml><return_code>SUCCESS</return_code></xml>"
    text = escape(message or "FAIL")
    return f"<xml><return_code>FAIL</return_code><return_msg>{text}</return_msg></xml>".encode("utf-8")


def parse_pay_notify(body: bytes, api_key: str, default_sign_type: str = "MD5") -> PaymentNotification:
    fields = parse_notify_xml(body, api_key, default_sign_type)
    if fields.get("return_code") != "SUCCESS":
        raise PayNotifyUnsupported("the pay notify's return_code is not SUCCESS")
    try:
        transaction = transaction_from_v2(fields)
    except (KeyError, ValueError):
        raise PayNotifyUnsupported("the pay notify lacks the fields we need") from None
    return PaymentNotification("payment", transaction, None, transaction.transaction_id or transaction.out_trade_no)


def parse_refund_notify(body: bytes, api_key: str) -> PaymentNotification:
    fields = parse_xml(body)
    if fields.get("return_code") != "SUCCESS" or not fields.get("req_info"):
        raise PayNotifyUnsupported("the refund notify carries no req_info")
    try:
        refund = refund_from_v2(decrypt_refund_req_info(fields["req_info"], api_key))
    except (KeyError, ValueError):
        raise PayNotifyUnsupported("the refund notify lacks the fields we need") from None
    return PaymentNotification("refund", None, refund, refund.refund_id)


# ---------------------------------------------------------------- client

class PayV2Client:
    """unifiedorder, orderquery, closeorder and refund; every answer's sign is checked before use."""

    def __init__(self, appid: str, mchid: str, api_key: str, sign_type: str = "MD5",
                 api_base: str = "https://api.mch.weixin.qq.com", client_cert_pem: str | None = None,
                 client_key_pem: str | None = None, timeout: float = 5.0):
        if sign_type not in SIGN_TYPES:
            raise ValueError(f"unsupported sign_type {sign_type!r}")
        self._appid, self._mchid, self._api_key, self._sign_type = appid, mchid, api_key, sign_type
        self._base = api_base.rstrip("/")
        self._client_cert = (client_cert_pem, client_key_pem)
        self._tls_pool: Any = None
        self._timeout = timeout

    def unifiedorder(self, out_trade_no: str, body: str, total_fee: int, openid: str, time_expire: datetime,
                     notify_url: str, spbill_create_ip: str) -> str:
        fields = self._post("/pay/unifiedorder", "unifiedorder", {
            "body": body, "out_trade_no": out_trade_no, "total_fee": str(int(total_fee)),
            "spbill_create_ip": spbill_create_ip, "notify_url": notify_url, "trade_type": "JSAPI",
            "openid": openid, "time_expire": to_china_time(time_expire).strftime("%Y%m%d%H%M%S")})
        if not fields.get("prepay_id"):
            raise PayUnavailable("unifiedorder: the answer has no prepay_id")
        return fields["prepay_id"]

    def orderquery(self, out_trade_no: str) -> Transaction:
        fields = self._post("/pay/orderquery", "orderquery", {"out_trade_no": out_trade_no})
        return self._read(transaction_from_v2, fields, "orderquery")

    def closeorder(self, out_trade_no: str) -> None:
        self._post("/pay/closeorder", "closeorder", {"out_trade_no": out_trade_no})

    def refund(self, out_trade_no: str, out_refund_no: str, refund_fee: int, total_fee: int,
               refund_desc: str = "", notify_url: str = "") -> Refund:
        """Same argument order as PayV3Client.refund (refund amount, then the order's total)."""
        fields = self._post("/secapi/pay/refund", "refund", {
            "out_trade_no": out_trade_no, "out_refund_no": out_refund_no, "total_fee": str(int(total_fee)),
            "refund_fee": str(int(refund_fee)), "refund_desc": refund_desc, "notify_url": notify_url},
            client_cert=True)
        return self._read(refund_from_v2, fields, "refund")

    @staticmethod
    def _read(mapper: Any, fields: Mapping[str, str], api: str) -> Any:
        try:
            return mapper(fields)
        except (KeyError, ValueError):
            raise PayUnavailable(f"{api}: the answer lacks the fields we need") from None

    def _post(self, path: str, api: str, params: Mapping[str, str], client_cert: bool = False) -> dict[str, str]:
        request = {"appid": self._appid, "mch_id": self._mchid, "nonce_str": new_nonce(),
                   "sign_type": self._sign_type, **{k: v for k, v in params.items() if v not in (None, "")}}
        url = self._base + path
        pool = self._client_pool() if client_cert and url.startswith("https://") else None
        response = pay_http.send("POST", url, body=_to_xml(request, sign_v2(request, self._api_key, self._sign_type)),
                                 headers={"Content-Type": "text/xml; charset=utf-8"}, timeout=self._timeout,
                                 api=api, pool=pool)
        if response.status != 200:
            raise PayUnavailable(f"{api}: HTTP {response.status}")
        try:
            fields = parse_xml(response.data)
        except MalformedXml:
            raise PayUnavailable(f"{api}: the answer is not XML") from None
        if fields.get("return_code") != "SUCCESS":  # unsigned by WeChat: a protocol-level refusal
            raise self._error(api, "FAIL", fields.get("return_msg", ""))
        self._verify(fields)
        if fields.get("result_code") != "SUCCESS":
            raise self._error(api, fields.get("err_code") or "FAIL", fields.get("err_code_des", ""))
        return fields

    def _verify(self, fields: Mapping[str, str]) -> None:
        # WeChat signs an answer the way the request was signed. MD5 is accepted too after an
        # HMAC request: both are keyed by our API key, so either proves the sender, and an answer
        # signed the default way must not turn a completed call into a failure.
        try:
            verify_sign_v2(fields, self._api_key, self._sign_type)
        except PaySignatureError:
            if self._sign_type == "MD5":
                raise
            verify_sign_v2(fields, self._api_key, "MD5")

    @staticmethod
    def _error(api: str, code: str, message: str) -> PayApiError:
        log.warning("wechat pay v2 answered an error", api=api, errcode=code)
        return PayApiError(code, message, 200)

    def _client_pool(self) -> Any:
        cert_pem, key_pem = self._client_cert
        if not cert_pem or not key_pem:
            raise ValueError("v2 refunds need WECHAT_PAY_CLIENT_CERT and WECHAT_PAY_CLIENT_KEY")
        if self._tls_pool is None:
            self._tls_pool = pay_http.client_tls_pool(cert_pem, key_pem)
        return self._tls_pool


def _to_xml(request: Mapping[str, str], sign: str) -> bytes:
    from wechatpy.pay.utils import dict_to_xml  # see the module docstring: only v2 calls pay the import

    if any("]]>" in str(value) for value in request.values()):  # would close wechatpy's CDATA early
        raise ValueError("a v2 request value contains ']]>'")
    return dict_to_xml(dict(request), sign).encode("utf-8")
