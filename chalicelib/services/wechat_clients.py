"""The configured WeChat adapters, built once per process from Settings."""
from __future__ import annotations

import functools

from chalicelib.settings import get_settings
from chalicelib.wechat.open_api import WeChatOpenApi


@functools.lru_cache(maxsize=1)
def open_api() -> WeChatOpenApi:
    settings = get_settings()
    return WeChatOpenApi(settings.wechat_api_base, settings.wechat_appid, settings.wechat_secret,
                         timeout=settings.wechat_http_timeout_seconds)


def reset_clients() -> None:
    open_api.cache_clear()
