"""How a WeChat identity becomes our user id.

The user id is derived from (appid, openid) with SHA-256, so login is one conditional
UpdateItem (no lookup index, no second write) and the openid never appears in ids we hand out.
The storage condition `openid == :openid` guards the (astronomically unlikely) collision.
"""
from __future__ import annotations

import base64
import hashlib


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
