"""Settings of the logistics service (物流助手): e-waybills, tracking pushes and polls, anomalies.

Read from the environment on each call (a handful of lookups; a test or an operator changing one
needs no cache reset), validated: a value that is not valid raises LogisticsSettingsError, a 409
`logistics_not_configured` wherever it surfaces (never a 500, never a silent default). See
docs/logistics.md.

    LOGISTICS_SENDER              JSON: the store's sender address for waybills
                                  {"name", "mobile" or "tel", "province", "city", "area", "address",
                                   "company"?, "post_code"?}; unset: waybills cannot be created
    LOGISTICS_PUSH_TOKEN          the message-push Token (消息推送 Token) WeChat signs pushes with;
                                  or LOGISTICS_PUSH_TOKEN_SSM naming an SSM SecureString;
                                  unset: every push is refused (401)
    LOGISTICS_NO_PICKUP_HOURS     no pickup scan this long after the waybill: alert (default 72)
    LOGISTICS_STALL_DAYS          no movement this long after the last event: alert (default 3)
    LOGISTICS_POLL_AFTER_HOURS    poll WeChat for a waybill's path after this long without a push
                                  (default 6)
    LOGISTICS_DEFAULT_WEIGHT_KG   the parcel weight sent when the merchant gives none (default 1)
    LOGISTICS_SHOP_IMG_URL        optional goods picture shown in WeChat's logistics notice
"""
from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from datetime import timedelta

from chalicelib.errors import Conflict


class LogisticsSettingsError(Conflict):
    """A logistics setting is missing or not valid (the message names it, never its value)."""
    code = "logistics_not_configured"


_TEXT_LIMITS = {"name": 64, "tel": 32, "mobile": 32, "company": 64, "post_code": 10, "country": 64,
                "province": 64, "city": 64, "area": 64, "address": 512}
_REQUIRED = ("name", "province", "city", "area", "address")
_PHONE = re.compile(r"^[0-9+\-() ]{5,32}$")


@dataclass(frozen=True)
class Sender:
    name: str
    province: str
    city: str
    area: str
    address: str
    mobile: str | None = None
    tel: str | None = None
    company: str | None = None
    post_code: str | None = None

    def as_wechat(self) -> dict[str, str]:
        """WeChat's sender object (empty optional fields left out)."""
        return {key: value for key, value in self.__dict__.items() if value}


def sender() -> Sender:
    """The configured sender address (LOGISTICS_SENDER); LogisticsSettingsError if unset or invalid."""
    raw = (os.environ.get("LOGISTICS_SENDER") or "").strip()
    if not raw:
        raise LogisticsSettingsError("LOGISTICS_SENDER is not set: the store's sender address is needed")
    try:
        data = json.loads(raw)
    except ValueError:
        raise LogisticsSettingsError("LOGISTICS_SENDER must be a JSON object") from None
    if not isinstance(data, dict) or set(data) - set(_TEXT_LIMITS):
        raise LogisticsSettingsError(f"LOGISTICS_SENDER must be an object of {sorted(_TEXT_LIMITS)}")
    for key, value in data.items():
        if not isinstance(value, str) or len(value.strip()) > _TEXT_LIMITS[key]:
            raise LogisticsSettingsError(f"LOGISTICS_SENDER.{key} must be text of at most {_TEXT_LIMITS[key]}")
    fields = {key: value.strip() for key, value in data.items() if key != "country" and value.strip()}
    missing = [key for key in _REQUIRED if key not in fields]
    if missing or not (fields.get("mobile") or fields.get("tel")):
        raise LogisticsSettingsError(f"LOGISTICS_SENDER needs {', '.join(_REQUIRED)} and mobile or tel")
    for key in ("mobile", "tel"):
        if key in fields and not _PHONE.match(fields[key]):
            raise LogisticsSettingsError(f"LOGISTICS_SENDER.{key} is not a phone number")
    return Sender(**fields)


def push_token() -> str | None:
    """The message-push Token, or None when pushes are not configured (every push is refused)."""
    direct = (os.environ.get("LOGISTICS_PUSH_TOKEN") or "").strip()
    if direct:
        return direct if 3 <= len(direct) <= 64 else None  # WeChat's Token is 3-32 letters/digits
    parameter = (os.environ.get("LOGISTICS_PUSH_TOKEN_SSM") or "").strip()
    return _ssm_parameter(parameter) if parameter else None


@functools.lru_cache(maxsize=4)
def _ssm_parameter(name: str) -> str | None:
    import boto3  # local import: only deployments that use SSM pay for the client

    value = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"].strip()
    return value or None


def _number(name: str, default: float, low: float, high: float) -> float:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise LogisticsSettingsError(f"{name} must be a number") from None
    if not low <= value <= high:
        raise LogisticsSettingsError(f"{name} must be between {low:g} and {high:g}")
    return value


def no_pickup_after() -> timedelta:
    return timedelta(hours=_number("LOGISTICS_NO_PICKUP_HOURS", 72, 0.01, 24 * 30))


def stall_after() -> timedelta:
    return timedelta(days=_number("LOGISTICS_STALL_DAYS", 3, 0.001, 60))


def poll_after() -> timedelta:
    return timedelta(hours=_number("LOGISTICS_POLL_AFTER_HOURS", 6, 0.01, 24 * 7))


def default_weight_kg() -> float:
    return _number("LOGISTICS_DEFAULT_WEIGHT_KG", 1.0, 0.01, 1000)


def shop_img_url() -> str | None:
    value = (os.environ.get("LOGISTICS_SHOP_IMG_URL") or "").strip()
    return value if value.startswith(("https://", "http://")) and len(value) <= 1024 else None
