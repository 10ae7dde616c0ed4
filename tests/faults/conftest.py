"""Fault tests provoke hundreds of SDK retries; botocore backs off up to seconds before each
(right for production, where the pause lets DynamoDB recover). Here the engine is local and the
fault is injected, so the retries keep their order and count but wait at most 10 ms."""
from __future__ import annotations

import time
import types

import botocore.endpoint
import pytest

MAX_BACKOFF_SECONDS = 0.01


@pytest.fixture(autouse=True)
def short_sdk_backoff(monkeypatch):
    shim = types.SimpleNamespace(sleep=lambda seconds: time.sleep(min(seconds, MAX_BACKOFF_SECONDS)))
    monkeypatch.setattr(botocore.endpoint, "time", shim)
