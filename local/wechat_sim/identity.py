"""Deterministic fake identities: openid, unionid, phone numbers, secrets.

Tests and demo front-ends pick login codes like ``alice-1``, ``alice-2``:
everything before the first "-" names the user, so the same person gets the
same openid on every login while each code string stays single-use.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

# WeChat codes are opaque; we only require a sane, URL-safe shape.
CODE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
PHONE_CODE_RE = re.compile(r"^phone-(1[3-9]\d{9})(-.*)?$")


def is_valid_code(code: object) -> bool:
    return isinstance(code, str) and bool(CODE_RE.match(code))


def code_prefix(code: str) -> str:
    return code.split("-", 1)[0]


def _alnum_id(material: str) -> str:
    """'o' + 27 chars of urlsafe-b64(sha256), mapped into [A-Za-z0-9] (28 total)."""
    digest = hashlib.sha256(material.encode("utf-8")).digest()
    text = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    # Keep ids alphanumeric so they are safe in paths, logs and regexes.
    text = text.replace("-", "x").replace("_", "y")
    return "o" + text[:27]


def openid_for(appid: str, code: str) -> str:
    """Per-app user id: the same person has different openids in different apps."""
    return _alnum_id(f"{appid}:{code_prefix(code)}")


def unionid_for(code: str) -> str:
    """Cross-app user id: deliberately independent of appid, like WeChat's
    unionid which is shared by all apps under one open-platform account."""
    return _alnum_id(f"unionid:{code_prefix(code)}")


def phone_for(code: str) -> str:
    """Mainland mobile number: taken from ``phone-1xxxxxxxxxx[-n]`` codes,
    otherwise derived from sha256(code) so it is stable per code."""
    match = PHONE_CODE_RE.match(code)
    if match:
        return match.group(1)
    value = int.from_bytes(hashlib.sha256(code.encode("utf-8")).digest(), "big")
    second = "3456789"[value % 7]
    return f"1{second}{(value // 7) % 10**9:09d}"


def new_session_key() -> str:
    return base64.b64encode(secrets.token_bytes(16)).decode("ascii")


def new_access_token() -> str:
    # Real tokens are ~136 chars of [A-Za-z0-9_-]; 128 is close enough and
    # long enough that clients cannot get away with a short column.
    return secrets.token_urlsafe(96)
