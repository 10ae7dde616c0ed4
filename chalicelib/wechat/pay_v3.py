"""WeChat Pay APIv3: our own signer and verifier on `cryptography`, and a thin client.

Signatures cover exact bytes: we sign the body bytes we send and verify the body bytes we
received, never a re-serialised JSON (a different key order or escape would break either side).
Verification accepts platform certificates (by certificate serial) and the platform public key
(`PUB_KEY_ID_...`) at the same time, as WeChat's migration between the two requires.
"""
from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Callable, Mapping
from urllib.parse import quote, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib import clock
from chalicelib.log import get_logger
from chalicelib.wechat import pay_http
from chalicelib.wechat.pay_http import load_pem_or_path, new_nonce, split_pem, to_china_time
from chalicelib.wechat.pay_types import (
    PayApiError, PaymentNotification, PayNotifyUnsupported, PaySignatureError, PayUnavailable, Refund, Transaction,
    refund_from_v3, transaction_from_v3,
)

__all__ = [
    "PayV3Config", "PayV3Client", "load_pem_or_path", "authorization_header", "request_message", "rsa_sign",
    "verify_signature", "platform_keys", "decrypt_resource", "jsapi_pay_params", "parse_notify",
    "transaction_from_v3", "refund_from_v3",
]

log = get_logger(__name__)

SCHEME = "WECHATPAY2-SHA256-RSA2048"
MAX_SKEW_SECONDS = 300  # WeChat's advice: refuse answers and notifies more than 5 minutes off
PAYMENT_EVENTS = frozenset({"TRANSACTION.SUCCESS"})
REFUND_EVENTS = frozenset({"REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"})


@dataclass(frozen=True)
class PayV3Config:
    mchid: str
    appid: str
    api_base: str
    merchant_private_key_pem: str = field(repr=False)
    merchant_cert_serial: str
    apiv3_key: str = field(repr=False)
    platform_certs_pem: tuple[str, ...] | list[str] = ()  # each entry may hold several certificates
    platform_public_key_pem: str | None = None
    platform_public_key_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "platform_certs_pem", tuple(self.platform_certs_pem))  # hashable: keys are cached
        object.__setattr__(self, "api_base", self.api_base.rstrip("/"))
        if bool(self.platform_public_key_pem) != bool(self.platform_public_key_id):
            raise ValueError("the platform public key needs its PUB_KEY_ID, and the id its key")
        if not self.platform_certs_pem and not self.platform_public_key_pem:
            raise ValueError("configure platform certificates, a platform public key, or both")


# ---------------------------------------------------------------- keys

def _serial_key(serial: str) -> str:
    # Certificate serials are hex; a leading zero may or may not be written. Ids are left alone.
    return serial.strip().upper().lstrip("0") or "0"


@functools.lru_cache(maxsize=16)
def _load_private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the merchant private key must be an RSA key")
    return key


def _private_key(key: str | bytes | rsa.RSAPrivateKey) -> rsa.RSAPrivateKey:
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    return _load_private_key(key.decode("ascii") if isinstance(key, bytes) else key)


@functools.lru_cache(maxsize=8)
def _platform_keys(certs: tuple[str, ...], public_key_pem: str | None,
                   public_key_id: str | None) -> Mapping[str, rsa.RSAPublicKey]:
    keys: dict[str, Any] = {}
    for bundle in certs:
        for block in split_pem(bundle):
            cert = x509.load_pem_x509_certificate(block.encode("ascii"))
            keys[_serial_key(format(cert.serial_number, "X"))] = cert.public_key()
    if public_key_pem and public_key_id:
        keys[_serial_key(public_key_id)] = serialization.load_pem_public_key(public_key_pem.encode("ascii"))
    if not all(isinstance(key, rsa.RSAPublicKey) for key in keys.values()):
        raise ValueError("platform keys must be RSA keys")
    return MappingProxyType(keys)


def platform_keys(config: PayV3Config) -> Mapping[str, rsa.RSAPublicKey]:
    """Serial (certificate serial or PUB_KEY_ID) -> public key, parsed once per process."""
    return _platform_keys(config.platform_certs_pem, config.platform_public_key_pem, config.platform_public_key_id)


# ---------------------------------------------------------------- signing and verification

def request_message(method: str, url: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """`METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`; `url` is the path plus query, as sent."""
    head = f"{method.upper()}\n{url}\n{timestamp}\n{nonce}\n".encode("utf-8")
    return head + body + b"\n"


def rsa_sign(private_key: str | bytes | rsa.RSAPrivateKey, message: bytes) -> str:
    """Base64 SHA256withRSA (PKCS#1 v1.5)."""
    signature = _private_key(private_key).sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def authorization_header(method: str, url: str, body: bytes, *, mchid: str, serial_no: str,
                         private_key: str | bytes | rsa.RSAPrivateKey, timestamp: int | None = None,
                         nonce: str | None = None) -> str:
    stamp = str(clock.epoch_seconds() if timestamp is None else timestamp)
    nonce = nonce or new_nonce()
    signature = rsa_sign(private_key, request_message(method, url, stamp, nonce, body))
    return (f'{SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{stamp}",serial_no="{serial_no}"')


def verify_signature(headers: Mapping[str, str], body: bytes, keys: Mapping[str, rsa.RSAPublicKey],
                     now: datetime | None = None) -> None:
    """Check `Wechatpay-*` headers over `TIMESTAMP\\nNONCE\\nBODY\\n`; raise PaySignatureError if not good."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        stamp, nonce, signature, serial = (lowered[f"wechatpay-{name}"]
                                           for name in ("timestamp", "nonce", "signature", "serial"))
    except KeyError:
        raise PaySignatureError("missing Wechatpay-Timestamp/Nonce/Signature/Serial") from None
    if lowered.get("wechatpay-signature-type", SCHEME) != SCHEME:
        raise PaySignatureError("unsupported Wechatpay-Signature-Type")
    if not re.fullmatch(r"[0-9]{1,12}", stamp):
        raise PaySignatureError("Wechatpay-Timestamp is not a number")
    moment = (now or clock.now()).timestamp()
    if abs(moment - int(stamp)) > MAX_SKEW_SECONDS:
        raise PaySignatureError("Wechatpay-Timestamp is more than 5 minutes from now")
    key = keys.get(_serial_key(serial))
    if key is None:
        raise PaySignatureError("Wechatpay-Serial names no configured platform certificate or public key")
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, f"{stamp}\n{nonce}\n".encode("utf-8") + body + b"\n", padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        raise PaySignatureError("Wechatpay-Signature does not verify") from None


def decrypt_resource(resource: Mapping[str, Any], apiv3_key: str | bytes) -> str:
    """The plaintext of an AEAD_AES_256_GCM `resource` (notifies, certificate downloads).

    The name says 256, but AESGCM takes the key length as given: real APIv3 keys are 32 bytes,
    the wechatpay-go test keys 16. A failing tag means tampering or another merchant's key.
    """
    key = apiv3_key.encode("utf-8") if isinstance(apiv3_key, str) else apiv3_key
    if len(key) not in (16, 24, 32):
        raise ValueError("the APIv3 key must be 32 bytes")
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise PaySignatureError("unsupported resource algorithm")
    try:
        associated = str(resource.get("associated_data") or "").encode("utf-8")
        plain = AESGCM(key).decrypt(str(resource["nonce"]).encode("utf-8"),
                                    base64.b64decode(resource["ciphertext"], validate=True), associated)
        return plain.decode("utf-8")
    except InvalidTag:
        raise PaySignatureError("resource does not decrypt: tampered, or another APIv3 key") from None
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise PaySignatureError("malformed encrypted resource") from None


def jsapi_pay_params(appid: str, prepay_id: str, private_key: str | bytes | rsa.RSAPrivateKey,
                     timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """The `wx.requestPayment` parameters, all strings; paySign over `appid\\ntimeStamp\\nnonceStr\\npackage\\n`."""
    stamp = str(clock.epoch_seconds() if timestamp is None else timestamp)
    nonce = nonce or new_nonce()
    package = f"prepay_id={prepay_id}"
    pay_sign = rsa_sign(private_key, f"{appid}\n{stamp}\n{nonce}\n{package}\n".encode("utf-8"))
    return {"timeStamp": stamp, "nonceStr": nonce, "package": package, "signType": "RSA", "paySign": pay_sign}


def parse_notify(headers: Mapping[str, str], body: bytes, config: PayV3Config,
                 now: datetime | None = None) -> PaymentNotification:
    """Verify, decrypt and read one v3 notify. PaySignatureError: refuse it. PayNotifyUnsupported:
    genuine, but not a payment/refund event we handle (or missing what we need)."""
    verify_signature(headers, body, platform_keys(config), now)
    try:
        envelope = json.loads(body)
        event_type, notify_id, resource = envelope["event_type"], str(envelope["id"]), envelope["resource"]
    except (ValueError, TypeError, KeyError):
        raise PayNotifyUnsupported("the notify is not a WeChat Pay event") from None
    if event_type not in PAYMENT_EVENTS | REFUND_EVENTS:
        raise PayNotifyUnsupported(f"event type {event_type!r} is not handled")
    plain = decrypt_resource(resource, config.apiv3_key)
    try:
        data = json.loads(plain)
        if event_type in PAYMENT_EVENTS:
            return PaymentNotification("payment", transaction_from_v3(data), None, notify_id)
        return PaymentNotification("refund", None, refund_from_v3(data), notify_id)
    except (ValueError, TypeError, KeyError, AttributeError):
        raise PayNotifyUnsupported(f"{event_type} resource lacks the fields we need") from None


# ---------------------------------------------------------------- client

class PayV3Client:
    """JSAPI prepay, query, close and refunds. Every answer's signature is checked before it is read."""

    def __init__(self, config: PayV3Config, timeout: float = 5.0, now: Callable[[], datetime] = clock.now):
        self._config = config
        self._key = _private_key(config.merchant_private_key_pem)
        self._platform = platform_keys(config)
        self._timeout = timeout
        self._now = now

    def prepay_jsapi(self, out_trade_no: str, description: str, amount_fen: int, payer_openid: str,
                     time_expire: datetime, notify_url: str, profit_sharing: bool = False) -> str:
        body = {"appid": self._config.appid, "mchid": self._config.mchid, "description": description,
                "out_trade_no": out_trade_no, "notify_url": notify_url,
                "time_expire": to_china_time(time_expire).isoformat(timespec="seconds"),
                "amount": {"total": int(amount_fen), "currency": "CNY"}, "payer": {"openid": payer_openid}}
        if profit_sharing:  # WeChat holds the funds until they are split or unfrozen (分账)
            body["settle_info"] = {"profit_sharing": True}
        data = self._call("POST", "/v3/pay/transactions/jsapi", body, api="jsapi_prepay")
        prepay_id = data.get("prepay_id")
        if not isinstance(prepay_id, str) or not prepay_id:
            raise PayUnavailable("jsapi_prepay: the answer has no prepay_id")
        return prepay_id

    def query(self, out_trade_no: str) -> Transaction:
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}?mchid={quote(self._config.mchid)}"
        return self._read(transaction_from_v3, self._call("GET", path, None, api="query"), "query")

    def close(self, out_trade_no: str) -> None:
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}/close"
        self._call("POST", path, {"mchid": self._config.mchid}, api="close")

    def refund(self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int,
               reason: str, notify_url: str) -> Refund:
        body: dict[str, Any] = {"out_trade_no": out_trade_no, "out_refund_no": out_refund_no,
                                "notify_url": notify_url,
                                "amount": {"refund": int(refund_fen), "total": int(total_fen), "currency": "CNY"}}
        if reason:
            body["reason"] = reason
        return self._read(refund_from_v3, self._call("POST", "/v3/refund/domestic/refunds", body, api="refund"),
                          "refund")

    def query_refund(self, out_refund_no: str) -> Refund:
        path = f"/v3/refund/domestic/refunds/{quote(out_refund_no, safe='')}"
        return self._read(refund_from_v3, self._call("GET", path, None, api="query_refund"), "query_refund")

    @staticmethod
    def _read(mapper: Callable[[Mapping[str, Any]], Any], data: Mapping[str, Any], api: str) -> Any:
        try:
            return mapper(data)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise PayUnavailable(f"{api}: the answer lacks the fields we need") from None

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None, api: str,
              extra_headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        url = self._config.api_base + path
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8") if body else b""
        target = urlsplit(url)
        signed_url = target.path + (f"?{target.query}" if target.query else "")
        headers = {"Accept": "application/json", "User-Agent": "store-backend/wechatpay-v3",
                   "Authorization": authorization_header(
                       method, signed_url, payload, mchid=self._config.mchid,
                       serial_no=self._config.merchant_cert_serial, private_key=self._key)}
        if body:
            headers["Content-Type"] = "application/json"
        headers.update(extra_headers or {})  # e.g. Wechatpay-Serial: the key that encrypted a field
        response = pay_http.send(method, url, body=payload or None, headers=headers, timeout=self._timeout, api=api)
        if 200 <= response.status < 300:
            verify_signature(response.headers, response.data, self._platform, self._now())
            return self._json(response.data, api) if response.data else {}
        raise self._error(response, api)

    def _error(self, response: pay_http.RawResponse, api: str) -> PayApiError:
        if response.status < 400:
            raise PayUnavailable(f"{api}: unexpected HTTP {response.status}")
        # Official SDKs read error answers unverified (a gateway may answer unsigned); we still refuse
        # one whose signature is present but wrong. An unsigned code is only a hint: confirm a
        # money-relevant one (ORDER_NOT_EXIST, ...) with a signed query before acting on it.
        if any(name.lower() == "wechatpay-signature" for name in response.headers):
            verify_signature(response.headers, response.data, self._platform, self._now())
        try:
            data = json.loads(response.data)
            code, message = str(data["code"]), str(data.get("message", ""))
        except (ValueError, TypeError, KeyError):
            code, message = f"HTTP_{response.status}", "the error answer is not WeChat Pay JSON"
        log.warning("wechat pay answered an error", api=api, status=response.status, errcode=code)
        return PayApiError(code, message, response.status)

    @staticmethod
    def _json(data: bytes, api: str) -> dict[str, Any]:
        try:
            parsed = json.loads(data)
        except ValueError:
            raise PayUnavailable(f"{api}: the answer is not JSON") from None
        if not isinstance(parsed, dict):
            raise PayUnavailable(f"{api}: the answer is not a JSON object")
        return parsed
