"""The logistics settings are validated: a bad value names the setting, never passes as good."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from chalicelib import logistics_settings as settings

SENDER = {"name": "鲜果园", "mobile": "13900000000", "province": "上海市", "city": "上海市",
          "area": "徐汇区", "address": "漕溪北路88号"}


def test_the_sender_is_read_from_json(monkeypatch):
    monkeypatch.setenv("LOGISTICS_SENDER", json.dumps({**SENDER, "company": " 鲜果园 ", "country": "中国"}))
    assert settings.sender().as_wechat() == {**SENDER, "company": "鲜果园"}


@pytest.mark.parametrize("value", [
    "", "not json", "[]", json.dumps({**SENDER, "mobile": None}), json.dumps({**SENDER, "colour": "red"}),
    json.dumps({key: value for key, value in SENDER.items() if key != "mobile"}),
    json.dumps({**SENDER, "mobile": "call me"}), json.dumps({**SENDER, "address": "x" * 600}),
])
def test_a_bad_sender_is_refused(monkeypatch, value):
    monkeypatch.setenv("LOGISTICS_SENDER", value)
    with pytest.raises(settings.LogisticsSettingsError) as error:
        settings.sender()
    assert "LOGISTICS_SENDER" in str(error.value) and "13900000000" not in str(error.value)


def test_durations_have_defaults_and_bounds(monkeypatch):
    for name in ("LOGISTICS_NO_PICKUP_HOURS", "LOGISTICS_STALL_DAYS", "LOGISTICS_POLL_AFTER_HOURS"):
        monkeypatch.delenv(name, raising=False)
    assert (settings.no_pickup_after(), settings.stall_after(), settings.poll_after()) == (
        timedelta(hours=72), timedelta(days=3), timedelta(hours=6))
    monkeypatch.setenv("LOGISTICS_STALL_DAYS", "2.5")
    assert settings.stall_after() == timedelta(days=2.5)
    for bad in ("0", "-1", "soon", "100"):
        monkeypatch.setenv("LOGISTICS_STALL_DAYS", bad)
        with pytest.raises(settings.LogisticsSettingsError):
            settings.stall_after()


def test_the_push_token_is_optional(monkeypatch):
    monkeypatch.delenv("LOGISTICS_PUSH_TOKEN", raising=False)
    monkeypatch.delenv("LOGISTICS_PUSH_TOKEN_SSM", raising=False)
    assert settings.push_token() is None
    monkeypatch.setenv("LOGISTICS_PUSH_TOKEN", "ab")  # shorter than WeChat allows: not a token
    assert settings.push_token() is None
    monkeypatch.setenv("LOGISTICS_PUSH_TOKEN", "pushToken1")
    assert settings.push_token() == "pushToken1"
