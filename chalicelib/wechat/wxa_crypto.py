"""Mini-program open-data crypto: `encryptedData` decryption and the two signatures over session_key.

The session_key never leaves the server; these helpers only ever receive it from our own store.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class WxaDecryptError(ValueError):
    """encryptedData that does not decrypt with this session_key/iv, or was made for another appid."""


def decrypt_encrypted_data(encrypted_data: str, session_key: str, iv: str, appid: str) -> dict[str, Any]:
    """AES-128-CBC/PKCS7 with key = b64decode(session_key), iv = b64decode(iv); the JSON inside must
    carry our appid in `watermark.appid` (otherwise it was encrypted for another mini-program)."""
    try:
        key, vector = base64.b64decode(session_key, validate=True), base64.b64decode(iv, validate=True)
        ciphertext = base64.b64decode(encrypted_data, validate=True)
        decryptor = Cipher(algorithms.AES(key), modes.CBC(vector)).decryptor()
        unpadder = sym_padding.PKCS7(128).unpadder()
        plain = unpadder.update(decryptor.update(ciphertext) + decryptor.finalize()) + unpadder.finalize()
        data = json.loads(plain.decode("utf-8"))
    except (binascii.Error, ValueError):
        raise WxaDecryptError("encryptedData does not decrypt with this session_key and iv") from None
    watermark = data.get("watermark") if isinstance(data, dict) else None
    if not isinstance(watermark, dict) or watermark.get("appid") != appid:
        raise WxaDecryptError("encryptedData was not made for this appid")
    return data


def rawdata_signature(raw_data: str, session_key: str) -> str:
    """`wx.getUserInfo` signature: lower-case hex SHA1(rawData + session_key)."""
    return hashlib.sha1((raw_data + session_key).encode("utf-8")).hexdigest()


def verify_rawdata_signature(raw_data: str, session_key: str, signature: str) -> bool:
    return hmac.compare_digest(rawdata_signature(raw_data, session_key).encode("ascii"),
                               signature.lower().encode("utf-8"))


def wxa_session_signature(session_key: str, post_data: str | bytes) -> str:
    """Login-state signature (sig_method hmac_sha256): hex HMAC-SHA256 keyed by the session_key
    *string* itself (as WeChat documents it), not by its Base64-decoded bytes."""
    body = post_data.encode("utf-8") if isinstance(post_data, str) else post_data
    return hmac.new(session_key.encode("utf-8"), body, hashlib.sha256).hexdigest()
