"""How a WeChat identity becomes our user id.

The user id is derived from (appid, openid) with SHA-256, so login is one conditional
UpdateItem (no lookup index, no second write) and the openid never appears in ids we hand out.
The storage condition `openid == :openid` guards the (astronomically unlikely) collision.
"""
from __future__ import annotations

import base64
import hashlib
import re


def user_id_for(appid: str, openid: str) -> str:
    digest = hashlib.sha256(f"{appid}:{openid}".encode()).digest()
    return "u" + base64.b32encode(digest).decode("ascii").rstrip("=").lower()[:24]


def mask_phone(phone: str | None) -> str | None:
    """138****8000: what a user may see of their own number in a response."""
    if not phone:
        return None
    if len(phone) < 7:
        return "*" * len(phone)
    return f"{phone[:3]}****{phone[-4:]}"


# A referral code is the user id, reversibly disguised: its 15 bytes XOR a fixed pad, in
# upper-case base32 (24 characters, no padding). No lookup item and no scan: the code decodes
# to the referrer's id. Not a secret (binding moves no money); it only keeps the share link
# from showing the user id as is.
_REFERRAL_PAD = hashlib.sha256(b"wechat-store referral code v1").digest()[:15]
_USER_ID = re.compile(r"u[a-z2-7]{24}")
_REFERRAL_CODE = re.compile(r"[A-Z2-7]{24}")


def referral_code_for(user_id: str) -> str | None:
    """The user's referral code (None for an id not made by user_id_for)."""
    if not _USER_ID.fullmatch(user_id):
        return None
    raw = base64.b32decode(user_id[1:].upper())
    return base64.b32encode(bytes(a ^ b for a, b in zip(raw, _REFERRAL_PAD))).decode("ascii")


def user_id_for_referral_code(code: str) -> str | None:
    """The user id a referral code stands for (case-insensitive), or None when malformed."""
    code = code.strip().upper()
    if not _REFERRAL_CODE.fullmatch(code):
        return None
    raw = base64.b32decode(code)
    return "u" + base64.b32encode(bytes(a ^ b for a, b in zip(raw, _REFERRAL_PAD))).decode("ascii").lower()
