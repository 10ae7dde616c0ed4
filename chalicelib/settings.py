"""One frozen Settings object, read from the environment once per process.

Secrets may be given directly (`WECHAT_SECRET=...`) or by naming an SSM parameter
(`WECHAT_SECRET_SSM=/store/prod/wechat-secret`); the SSM value is fetched (decrypted) the first
time settings are loaded, which is the first request of a cold Lambda, never at import time.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.domain.points import PointsPolicy

REAL_WECHAT_API_BASE = "https://api.weixin.qq.com"
REAL_WECHAT_PAY_API_BASE = "https://api.mch.weixin.qq.com"

SECRET_NAMES = (
    "WECHAT_SECRET",
    "WECHAT_PAY_API_KEY",
    "WECHAT_PAY_APIV3_KEY",
    "WECHAT_PAY_PRIVATE_KEY",
    "WECHAT_PAY_CLIENT_KEY",
    "ADMIN_PASSWORD",
    "AUTH_TOKEN_SECRET",
)


class SettingsError(RuntimeError):
    """The environment is missing or misstates something the app needs."""


@dataclass(frozen=True)
class PaySettings:
    """WeChat Pay (API.md "Configuration"). Keys and certificates are PEM text or file paths,
    resolved by the pay adapters; the values here are as configured."""
    version: str  # "v3" or "v2"
    mch_id: str
    api_base: str
    notify_url: str  # public base URL; the callback routes are appended
    api_key: str = field(repr=False)  # v2
    apiv3_key: str = field(repr=False)
    private_key: str = field(repr=False)
    cert_serial: str
    platform_certs: str
    public_key: str
    public_key_id: str
    client_cert: str
    client_key: str = field(repr=False)


@dataclass(frozen=True)
class Settings:
    stage: str
    table_prefix: str
    aws_region: str
    wechat_appid: str
    wechat_secret: str = field(repr=False)
    wechat_api_base: str
    auth_token_secret: str = field(repr=False)
    auth_token_ttl_seconds: int
    admin_username: str
    admin_password: str = field(repr=False)
    pay_timeout_minutes: float
    flash_pay_timeout_minutes: float
    flash_ip_burst: int
    flash_ip_per_second: float
    auto_confirm_days: float
    cors_allow_origins: tuple[str, ...]
    wechat_http_timeout_seconds: float
    pay: "PaySettings"
    points: "PointsPolicy" = field(default=None)  # type: ignore[assignment]  (always set by load_settings)
    after_sales_respond_hours: float = 48  # the merchant answers a new after-sales request within this
    return_review_hours: float = 72  # ...and receives (or rejects) goods sent back within this
    auto_approve_refund_max_fen: int = 0  # refund-only requests up to this are approved when the merchant is late

    def resource_name(self, base: str) -> str:
        """The name of a table or queue in this stack (one stack per TABLE_PREFIX)."""
        return f"{self.table_prefix}{base}"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _secret(name: str, default: str | None = None) -> str | None:
    """A secret from the environment, or from the SSM parameter named by `<NAME>_SSM`."""
    direct = _env(name)
    if direct is not None:
        return direct
    parameter = _env(f"{name}_SSM")
    if parameter is None:
        return default
    import boto3  # local import: only deployments that use SSM pay for the client

    response = boto3.client("ssm").get_parameter(Name=parameter, WithDecryption=True)
    return response["Parameter"]["Value"]


def _number(name: str, default: float, minimum: float = 0.0) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc
    if value <= minimum:
        raise SettingsError(f"{name} must be greater than {minimum}, got {raw!r}")
    return value


def load_settings() -> Settings:
    stage = _env("STAGE", "local")
    token_secret = _secret("AUTH_TOKEN_SECRET")
    if token_secret is None or len(token_secret) < 32:
        raise SettingsError("AUTH_TOKEN_SECRET (or AUTH_TOKEN_SECRET_SSM) must hold at least 32 characters")
    origins = tuple(o.strip() for o in (_env("CORS_ALLOW_ORIGINS", "") or "").split(",") if o.strip())
    return Settings(
        stage=stage,
        table_prefix=_env("TABLE_PREFIX", "") or "",
        aws_region=_env("AWS_REGION") or _env("AWS_DEFAULT_REGION") or "us-east-1",
        wechat_appid=_env("WECHAT_APPID", "") or "",
        wechat_secret=_secret("WECHAT_SECRET", "") or "",
        wechat_api_base=(_env("WECHAT_API_BASE") or REAL_WECHAT_API_BASE).rstrip("/"),
        auth_token_secret=token_secret,
        auth_token_ttl_seconds=int(_number("AUTH_TOKEN_TTL_SECONDS", 24 * 3600, minimum=59)),
        admin_username=_env("ADMIN_USERNAME", "") or "",
        admin_password=_secret("ADMIN_PASSWORD", "") or "",
        pay_timeout_minutes=_number("PAY_TIMEOUT_MINUTES", 15),
        # Flash-sale orders hold a scarce unit: a shorter wait gives it to the next buyer sooner.
        flash_pay_timeout_minutes=_number("FLASH_PAY_TIMEOUT_MINUTES", 5),
        # Flash-sale entries per source IP: many buyers share a carrier's or office's NAT, so ten
        # users' worth. The local stage raises it: there every request comes from 127.0.0.1.
        flash_ip_burst=int(_number("FLASH_IP_BURST", 50, minimum=1)),
        flash_ip_per_second=_number("FLASH_IP_PER_SECOND", 20, minimum=0.001),
        auto_confirm_days=_number("AUTO_CONFIRM_DAYS", 10),
        cors_allow_origins=origins,
        wechat_http_timeout_seconds=_number("WECHAT_HTTP_TIMEOUT_SECONDS", 5),
        pay=_pay_settings(),
        points=_points_policy(),
        after_sales_respond_hours=_number("AFTER_SALES_RESPOND_HOURS", 48),
        return_review_hours=_number("RETURN_REVIEW_HOURS", 72),
        auto_approve_refund_max_fen=int(_number("AUTO_APPROVE_REFUND_MAX_FEN", 0, minimum=-0.5)),
    )


def _points_policy():
    """The points rules (domain/points.py): POINTS_VALID_MONTHS (12; 1-24), POINTS_PER_YUAN (1),
    POINTS_SIGN_IN (5 a day), POINTS_REVIEW_PHOTO (20), POINTS_MAX_REDEEM_PERCENT (50)."""
    from chalicelib.domain.points import PointsPolicy

    valid_months = int(_number("POINTS_VALID_MONTHS", 12, minimum=0.5))
    max_percent = _number("POINTS_MAX_REDEEM_PERCENT", 50, minimum=-0.5)
    if valid_months > 24 or max_percent > 100:
        raise SettingsError("POINTS_VALID_MONTHS must be 1-24 and POINTS_MAX_REDEEM_PERCENT 0-100")
    return PointsPolicy(valid_months=valid_months, earn_per_yuan=int(_number("POINTS_PER_YUAN", 1, minimum=-0.5)),
                        sign_in_points=int(_number("POINTS_SIGN_IN", 5, minimum=-0.5)),
                        review_photo_points=int(_number("POINTS_REVIEW_PHOTO", 20, minimum=-0.5)),
                        max_redeem_permille=int(max_percent * 10))


def _pay_settings() -> PaySettings:
    version = (_env("WECHAT_PAY_VERSION", "v3") or "v3").lower()
    if version not in ("v2", "v3"):
        raise SettingsError(f"WECHAT_PAY_VERSION must be v2 or v3, got {version!r}")
    api_key = _secret("WECHAT_PAY_API_KEY", "") or ""
    if version == "v2" and len(api_key) != 32:
        # v2 signs and seals everything with this key: a short or empty one is a misconfiguration
        # that would let anyone sign a notify, so the store refuses to start instead.
        raise SettingsError("WECHAT_PAY_API_KEY (or WECHAT_PAY_API_KEY_SSM) must be exactly 32 characters "
                            "when WECHAT_PAY_VERSION=v2")
    return PaySettings(
        version=version,
        mch_id=_env("WECHAT_PAY_MCH_ID", "") or "",
        api_base=(_env("WECHAT_PAY_API_BASE") or REAL_WECHAT_PAY_API_BASE).rstrip("/"),
        notify_url=(_env("WECHAT_PAY_NOTIFY_URL", "") or "").rstrip("/"),
        api_key=api_key,
        apiv3_key=_secret("WECHAT_PAY_APIV3_KEY", "") or "",
        private_key=_secret("WECHAT_PAY_PRIVATE_KEY", "") or "",
        cert_serial=_env("WECHAT_PAY_CERT_SERIAL", "") or "",
        platform_certs=_env("WECHAT_PAY_PLATFORM_CERTS", "") or "",
        public_key=_env("WECHAT_PAY_PUBLIC_KEY", "") or "",
        public_key_id=_env("WECHAT_PAY_PUBLIC_KEY_ID", "") or "",
        client_cert=_env("WECHAT_PAY_CLIENT_CERT", "") or "",
        client_key=_secret("WECHAT_PAY_CLIENT_KEY", "") or "",
    )


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings_cache() -> None:
    """For tests and tools that change the environment after the first load."""
    get_settings.cache_clear()


def table_prefix_from_env() -> str:
    """The prefix, read without loading (and validating) every other setting.

    Table and queue names are fixed at import time (PynamoDB models and Chalice's queue
    decorators need them then), so they cannot wait for the secrets.
    """
    return _env("TABLE_PREFIX", "") or ""
