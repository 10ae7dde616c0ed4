from __future__ import annotations

import moto
import pytest

from chalicelib import settings


@pytest.fixture(autouse=True)
def _fresh_settings():
    settings.reset_settings_cache()
    yield
    settings.reset_settings_cache()


def test_a_short_token_secret_is_refused(monkeypatch):
    monkeypatch.setenv("AUTH_TOKEN_SECRET", "short")
    with pytest.raises(settings.SettingsError):
        settings.load_settings()


def test_pay_timeout_accepts_decimals_and_refuses_nonsense(monkeypatch):
    monkeypatch.setenv("PAY_TIMEOUT_MINUTES", "0.5")
    assert settings.load_settings().pay_timeout_minutes == 0.5
    monkeypatch.setenv("PAY_TIMEOUT_MINUTES", "soon")
    with pytest.raises(settings.SettingsError):
        settings.load_settings()


def test_cors_origins_are_a_comma_separated_list(monkeypatch):
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "https://a.example, https://b.example,")
    assert settings.load_settings().cors_allow_origins == ("https://a.example", "https://b.example")


def test_a_secret_can_come_from_an_ssm_parameter(monkeypatch):
    monkeypatch.delenv("WECHAT_SECRET")
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # the tests' guard; moto intercepts AWS's own hostnames only
    monkeypatch.setenv("WECHAT_SECRET_SSM", "/store/test/wechat-secret")
    with moto.mock_aws():
        import boto3

        boto3.client("ssm").put_parameter(Name="/store/test/wechat-secret", Value="from-ssm", Type="SecureString")
        assert settings.load_settings().wechat_secret == "from-ssm"


def test_secrets_are_not_in_the_settings_repr():
    text = repr(settings.load_settings())
    assert "test_app_secret_value" not in text and "test-token-secret" not in text
