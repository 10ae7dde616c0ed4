"""The WeChat server access token, shared by every Lambda without stampeding WeChat.

Three levels: this process's memory, then the `credentials` table, then WeChat's stable_token.
stable_token hands every caller the same token while it is valid (unlike the old /cgi-bin/token,
which invalidated the previous one), so concurrent cold Lambdas that all miss the cache still
agree on one token; the conditional put keeps the latest-expiring one. A token is refreshed
when less than REFRESH_MARGIN_SECONDS remain, and a token WeChat rejects is forced out once.
"""
from __future__ import annotations

import threading
from typing import Callable, TypeVar

from chalicelib import clock
from chalicelib.services.wechat_clients import open_api
from chalicelib.services.wechat_errors import wechat_failures_as_app_errors
from chalicelib.settings import get_settings
from chalicelib.storage import credentials
from chalicelib.wechat.http import WeChatApiError
from chalicelib.wechat.open_api import ACCESS_TOKEN_ERRCODES

REFRESH_MARGIN_SECONDS = 300

T = TypeVar("T")

_lock = threading.Lock()
_memory: dict[str, credentials.Credential] = {}


def _credential_name() -> str:
    return f"wechat_access_token#{get_settings().wechat_appid}"


def _fresh(credential: credentials.Credential | None, min_remaining_seconds: int) -> bool:
    return credential is not None and credential.expires_at - min_remaining_seconds > clock.epoch_seconds()


def get_access_token(force_refresh: bool = False, min_remaining_seconds: int = REFRESH_MARGIN_SECONDS) -> str:
    name = _credential_name()
    with _lock:
        cached = _memory.get(name)
        if not force_refresh and _fresh(cached, min_remaining_seconds):
            return cached.value
        stored = None if force_refresh else credentials.get_credential(name)
        if not _fresh(stored, min_remaining_seconds):
            with wechat_failures_as_app_errors("access token"):
                token = open_api().fetch_stable_token(force_refresh=force_refresh)
            stored = credentials.Credential(token.value, clock.epoch_seconds() + token.expires_in)
            credentials.put_credential_if_newer(name, stored.value, stored.expires_at)
        _memory[name] = stored
        return stored.value


def call_with_access_token(call: Callable[[str], T]) -> T:
    """Run `call(token)`; if WeChat says the token is stale, refresh it once and retry."""
    token = get_access_token()
    try:
        return call(token)
    except WeChatApiError as error:
        if error.errcode not in ACCESS_TOKEN_ERRCODES:
            raise
        forget_access_token(token)
        return call(get_access_token(force_refresh=True))


def forget_access_token(token: str) -> None:
    name = _credential_name()
    with _lock:
        if name in _memory and _memory[name].value == token:
            del _memory[name]
    credentials.delete_credential_if_value(name, token)


def clear_memory_cache() -> None:
    """Tests: forget what this process holds (the shared table is left alone)."""
    with _lock:
        _memory.clear()
