"""Opaque, signed list cursors.

A cursor carries DynamoDB's LastEvaluatedKey to the client and back. It is signed (HMAC), so a
client can neither forge a key into someone else's partition nor send a malformed one that
DynamoDB would answer with a 500-worthy ValidationException: any change is a 400 invalid_cursor.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from chalicelib.errors import BadRequest

_SIGNATURE_BYTES = 16


class InvalidCursor(BadRequest):
    code = "invalid_cursor"
    message = "The cursor is not one this list gave out"

    def __init__(self) -> None:
        super().__init__(details=[{"field": "cursor", "message": "invalid"}])


def _key(secret: str, scope: str) -> bytes:
    return hashlib.sha256(f"cursor:{scope}:{secret}".encode()).digest()


def encode_cursor(position: dict[str, Any] | None, secret: str, scope: str) -> str | None:
    """`scope` names the list (e.g. "orders:<user_id>"): a cursor only works where it came from."""
    if not position:
        return None
    payload = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    signature = hmac.new(_key(secret, scope), payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(signature + payload).rstrip(b"=").decode()


def decode_cursor(cursor: str | None, secret: str, scope: str) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise InvalidCursor() from None
    signature, payload = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
    expected = hmac.new(_key(secret, scope), payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    if not hmac.compare_digest(signature, expected):
        raise InvalidCursor()
    position = json.loads(payload)
    if not isinstance(position, dict):
        raise InvalidCursor()
    return position
