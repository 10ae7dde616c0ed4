"""`make run` with a merchant's own WeChat settings: the app takes them, the simulator keeps its own.

The simulator is a stand-in for WeChat with a demo merchant of its own; a merchant trying the stack
with their real WECHAT_PAY_* settings in the shell must still get a running stack (issue 12, item 8).
"""
from __future__ import annotations

import json
import os
import urllib.request

import pytest

from local.pay_setup import DEMO_PAY_ENV
from local.processes import free_port, http_status
from local.stack import APP_SETTING_PREFIXES, LocalStack
from local.wechat_sim.pay_keys import cert_serial, new_rsa_key, private_pem, self_signed_cert


@pytest.fixture
def merchant_shell(monkeypatch) -> dict[str, str]:
    """The environment of a merchant's shell: none of the test session's app settings, their own
    WeChat Pay merchant (another mch id, key, certificate serial and APIv3 key) at a WeChat Pay
    base URL on a loopback port nothing listens on."""
    for name in list(os.environ):
        if name.startswith(APP_SETTING_PREFIXES):
            monkeypatch.delenv(name)
    key = new_rsa_key()
    settings = {
        "WECHAT_PAY_MCH_ID": "1230000109",
        "WECHAT_PAY_PRIVATE_KEY": private_pem(key).decode("ascii"),
        "WECHAT_PAY_CERT_SERIAL": cert_serial(self_signed_cert(key, "a merchant of our own")),
        "WECHAT_PAY_APIV3_KEY": "merchantOwnAPIv3Key0000000000000",
        "WECHAT_PAY_API_BASE": f"http://127.0.0.1:{free_port()}",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return settings


def test_the_simulator_is_never_told_the_merchants_settings(merchant_shell):
    stack = LocalStack(inherit_env=True)
    for name, value in merchant_shell.items():
        assert stack.env[name] == value  # the caller's environment wins for the app
    told = stack.simulator_env
    leaked = [name for name, value in told.items() if value in merchant_shell.values()]
    assert not leaked
    assert "WECHAT_PAY_CERT_SERIAL" not in told  # its serial is its own certificate's
    assert told["WECHAT_PAY_MCH_ID"] == DEMO_PAY_ENV["WECHAT_PAY_MCH_ID"]


def test_the_banner_says_which_wechat_the_app_talks_to(merchant_shell, monkeypatch):
    banner = LocalStack(inherit_env=True).banner()
    assert f"{merchant_shell['WECHAT_PAY_API_BASE']} (not the simulator)" in banner
    assert merchant_shell["WECHAT_PAY_PRIVATE_KEY"] not in banner
    assert merchant_shell["WECHAT_PAY_APIV3_KEY"] not in banner

    monkeypatch.delenv("WECHAT_PAY_API_BASE")  # the merchant's keys, but Pay still at the simulator
    banner = LocalStack(inherit_env=True).banner()
    pay_row = next(line for line in banner.splitlines() if "WeChat Pay" in line)
    assert "WECHAT_PAY_MCH_ID" in pay_row and "WECHAT_PAY_CERT_SERIAL" in pay_row
    assert "the simulator keeps its demo merchant and will refuse them" in banner


def test_the_simulator_serves_the_app_with_the_stacks_own_pay_settings(monkeypatch):
    for name in list(os.environ):
        if name.startswith(APP_SETTING_PREFIXES):
            monkeypatch.delenv(name)
    stack = LocalStack(inherit_env=True)
    for name in ("WECHAT_PAY_MCH_ID", "WECHAT_PAY_API_KEY", "WECHAT_PAY_APIV3_KEY", "WECHAT_APPID", "WECHAT_SECRET"):
        assert stack.simulator_env[name] == stack.env[name], name
    assert not any("WeChat Pay" in line for line in stack.banner().splitlines())


@pytest.mark.e2e
@pytest.mark.dynamodb_local
def test_make_run_with_a_merchants_own_pay_settings_starts(merchant_shell):
    with LocalStack(inherit_env=True, seed=False) as stack:
        assert http_status(f"{stack.api_url}/health") == 200
        with urllib.request.urlopen(f"{stack.wechat_sim_url}/__sim/pay/platform", timeout=10) as response:
            simulator = json.load(response)
        assert simulator["mchid"] == DEMO_PAY_ENV["WECHAT_PAY_MCH_ID"]  # its own demo merchant
        assert simulator["merchant_serial"] != merchant_shell["WECHAT_PAY_CERT_SERIAL"]
        assert stack.env["WECHAT_PAY_API_BASE"] == merchant_shell["WECHAT_PAY_API_BASE"]
