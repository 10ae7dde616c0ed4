"""WeChat Pay primitives, written from WeChat's documentation (not from our app).

APIv3: SHA256withRSA (PKCS#1 v1.5) signatures in Base64 and AEAD_AES_256_GCM
resources.  APIv2: MD5 / HMAC-SHA256 signs over ``k=v&...&key=<API key>``,
flat ``<xml>`` bodies, and refund ``req_info`` = Base64(AES-256-ECB/PKCS7) with
the lower-case hex MD5 of the API key as the 32-byte key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
import xml.etree.ElementTree as ET

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ALNUM = string.ascii_letters + string.digits
V2_SIGN_TYPES = ("MD5", "HMAC-SHA256")


def nonce_str(length: int = 32) -> str:
    return "".join(secrets.choice(ALNUM) for _ in range(length))


# -- APIv3 ---------------------------------------------------------------------

def rsa_sign(key: RSAPrivateKey, message: str) -> str:
    signature = key.sign(message.encode("utf-8"), rsa_padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa_verify(key: RSAPublicKey, message: str, signature_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        key.verify(signature, message.encode("utf-8"), rsa_padding.PKCS1v15(), hashes.SHA256())
    except (ValueError, InvalidSignature):
        return False
    return True


def gcm_encrypt(key: bytes, nonce: str, associated_data: str, plaintext: str) -> str:
    sealed = AESGCM(key).encrypt(nonce.encode("utf-8"), plaintext.encode("utf-8"),
                                 associated_data.encode("utf-8"))
    return base64.b64encode(sealed).decode("ascii")


def gcm_decrypt(key: bytes, nonce: str, associated_data: str, ciphertext_b64: str) -> str:
    opened = AESGCM(key).decrypt(nonce.encode("utf-8"), base64.b64decode(ciphertext_b64),
                                 associated_data.encode("utf-8"))
    return opened.decode("utf-8")


# -- APIv2 ---------------------------------------------------------------------

def v2_sign(params: dict[str, str], api_key: str, sign_type: str = "MD5") -> str:
    """Upper-case hex sign over the non-empty params (``sign`` excluded), sorted
    by name, with ``&key=<API key>`` appended -- for HMAC too (a classic trap)."""
    pairs = [f"{k}={v}" for k, v in sorted(params.items()) if k != "sign" and v not in ("", None)]
    text = "&".join(pairs) + f"&key={api_key}"
    if sign_type == "HMAC-SHA256":
        digest = hmac.new(api_key.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()
    elif sign_type == "MD5":
        digest = hashlib.md5(text.encode("utf-8")).hexdigest()
    else:
        raise ValueError(f"unknown sign_type {sign_type!r}")
    return digest.upper()


def v2_check_sign(params: dict[str, str], api_key: str, sign_type: str) -> bool:
    expected = v2_sign(params, api_key, sign_type)
    # WeChat accepts a lower-case hex sign as well.
    return hmac.compare_digest(expected, (params.get("sign") or "").upper())


def _ecb_key(api_key: str) -> bytes:
    return hashlib.md5(api_key.encode("utf-8")).hexdigest().lower().encode("ascii")


def ecb_encrypt(api_key: str, plaintext: str) -> str:
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(_ecb_key(api_key)), modes.ECB()).encryptor()
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode("ascii")


def ecb_decrypt(api_key: str, ciphertext_b64: str) -> str:
    decryptor = Cipher(algorithms.AES(_ecb_key(api_key)), modes.ECB()).decryptor()
    data = decryptor.update(base64.b64decode(ciphertext_b64)) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(data) + unpadder.finalize()).decode("utf-8")


class XmlError(ValueError):
    """Body is not a flat WeChat ``<xml>`` document (or declares a DTD)."""


_DTD_RE = re.compile(rb"<!\s*(doctype|entity)", re.IGNORECASE)


def parse_xml(body: bytes, root: str = "xml") -> dict[str, str]:
    """Flat ``<root><k>v</k>...</root>`` -> dict.  Any DOCTYPE/ENTITY is refused
    before parsing, so external entities (XXE) and entity bombs never expand."""
    if _DTD_RE.search(body):
        raise XmlError("DOCTYPE/ENTITY declarations are not allowed")
    try:
        element = ET.fromstring(body)
    except ET.ParseError as exc:
        raise XmlError(str(exc)) from exc
    if element.tag != root:
        raise XmlError(f"root element must be <{root}>")
    out: dict[str, str] = {}
    for child in element:
        if len(child):
            raise XmlError(f"<{child.tag}> must not have children")
        out[child.tag] = child.text or ""
    return out


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def to_xml(params: dict[str, object], root: str = "xml") -> bytes:
    parts = [f"<{root}>"]
    for key, value in params.items():
        if value is None:
            continue
        text = str(value)
        parts.append(f"<{key}>{text if isinstance(value, int) else _cdata(text)}</{key}>")
    parts.append(f"</{root}>")
    return "".join(parts).encode("utf-8")
