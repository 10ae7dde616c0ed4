"""Validation of subscribeMessage.send bodies, following WeChat's documented
per-keyword value limits ("订阅消息参数值内容限制说明").

Kept apart from the handlers so the rules can be read (and extended) as data.
"""

from __future__ import annotations

import re
from typing import Any

KEY_RE = re.compile(
    r"^(thing|number|letter|symbol|character_string|time|date|amount"
    r"|phone_number|car_number|name|phrase)\d+$"
)

# Max characters per keyword type; None = only "non-empty" is checked.
MAX_LEN: dict[str, int | None] = {
    "thing": 20,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "character_string": 32,
    "phrase": 5,
    "name": 10,
    "phone_number": 17,
    "car_number": 8,
    "amount": None,
    "time": None,
    "date": None,
}

# Content rules WeChat documents for the simplest types ("只能数字，可带小数",
# "只能字母"); the fuzzier ones (time formats, car plates) are not checked.
CONTENT_RE: dict[str, re.Pattern] = {
    "number": re.compile(r"^-?\d+(\.\d+)?$"),
    "letter": re.compile(r"^[A-Za-z]+$"),
}

MINIPROGRAM_STATES = {"developer", "trial", "formal"}
LANGS = {"zh_CN", "en_US", "zh_HK", "zh_TW"}


def _invalid(detail: str) -> tuple[int, str]:
    return 47003, f"argument invalid! {detail}"


def validate(body: dict[str, Any], issued_openids: set[str]) -> tuple[int, str] | None:
    """Return (errcode, errmsg) for the first problem, or None if acceptable."""
    touser = body.get("touser")
    if not isinstance(touser, str) or touser not in issued_openids:
        return 40003, "invalid openid"
    template_id = body.get("template_id")
    if not isinstance(template_id, str) or not template_id.strip():
        return 40037, "invalid template_id"
    page = body.get("page")
    if page is not None and not isinstance(page, str):
        return _invalid("page must be a string")
    state = body.get("miniprogram_state")
    if state is not None and state not in MINIPROGRAM_STATES:
        return _invalid("miniprogram_state must be developer, trial or formal")
    lang = body.get("lang")
    if lang is not None and lang not in LANGS:
        return _invalid("lang must be zh_CN, en_US, zh_HK or zh_TW")
    return _validate_data(body.get("data"))


def _validate_data(data: Any) -> tuple[int, str] | None:
    if not isinstance(data, dict) or not data:
        return _invalid("data must be a non-empty object")
    for key, item in data.items():
        match = KEY_RE.match(key)
        if not match:
            return _invalid(f"data.{key} is not a valid keyword name")
        if not isinstance(item, dict) or "value" not in item:
            return _invalid(f"data.{key}.value is missing")
        value = item["value"]
        if not isinstance(value, str):
            return _invalid(f"data.{key}.value must be a string")
        if not value.strip():
            return _invalid(f"data.{key}.value is empty")
        kind = match.group(1)
        limit = MAX_LEN[kind]
        if limit is not None and len(value) > limit:
            return _invalid(f"data.{key}.value exceeds limit of {limit} characters")
        rule = CONTENT_RE.get(kind)
        if rule is not None and not rule.match(value):
            return _invalid(f"data.{key}.value invalid for {kind}")
    return None
