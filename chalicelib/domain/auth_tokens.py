"""Bearer tokens: signed, expiring, and naming a server-side session so they can be revoked.

Format: `v1.<payload>.<signature>`, both parts base64url without padding; the payload is compact
JSON `{"sid", "sub", "role", "iat", "exp"}` (admin tokens add `"arole"`: owner or staff) and the signature is HMAC-SHA256 over `v1.<payload>`.
A token proves who the bearer was when it was issued; the session it names (looked up per
request) says whether it still holds. The token never carries WeChat's session_key.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from chalicelib.errors import Unauthorized

VERSION = "v1"
ROLES = ("user", "admin")


@dataclass(frozen=True)
class TokenClaims:
    session_id: str
    subject: str  # user_id for role "user", admin username for role "admin"
    role: str
    issued_at: int
    expires_at: int
    admin_role: str | None = None  # "owner" or "staff" for role "admin" (absent in tokens issued before roles)


class InvalidToken(Unauthorized):
    code = "invalid_token"
    message = "The token is not valid; log in again"


class ExpiredToken(Unauthorized):
    code = "token_expired"
    message = "The token has expired; log in again"


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(message: str, secret: str) -> str:
    return _b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest())


def issue_token(claims: TokenClaims, secret: str) -> str:
    fields = {"sid": claims.session_id, "sub": claims.subject, "role": claims.role,
              "iat": claims.issued_at, "exp": claims.expires_at}
    if claims.admin_role:
        fields["arole"] = claims.admin_role
    payload = json.dumps(fields, separators=(",", ":"))
    signed_part = f"{VERSION}.{_b64encode(payload.encode())}"
    return f"{signed_part}.{_sign(signed_part, secret)}"


def verify_token(token: str, secret: str, now_epoch: int) -> TokenClaims:
    """The claims of a well-signed, unexpired token; InvalidToken/ExpiredToken otherwise."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise InvalidToken()
    signed_part = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_sign(signed_part, secret), parts[2]):
        raise InvalidToken()
    try:
        data = json.loads(_b64decode(parts[1]))
        claims = TokenClaims(session_id=str(data["sid"]), subject=str(data["sub"]), role=str(data["role"]),
                             issued_at=int(data["iat"]), expires_at=int(data["exp"]),
                             admin_role=str(data["arole"]) if data.get("arole") else None)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidToken() from None
    if claims.role not in ROLES:
        raise InvalidToken()
    if claims.expires_at <= now_epoch:
        raise ExpiredToken()
    return claims
