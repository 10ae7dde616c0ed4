"""The local stack: environment precedence, and the whole stack over HTTP on loopback."""
from __future__ import annotations

import json
import urllib.request

import pytest

from local.processes import chalice_stage_env, port_is_open
from local.stack import LocalStack, build_env, chalice_local_config

from .helpers import LOOPBACK_ADDRESSES, listening_addresses

SERVICES = {"WECHAT_API_BASE": "http://127.0.0.1:7003", "AWS_ACCESS_KEY_ID": "local"}
ENDPOINTS = {"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:7001", "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:7002"}


def test_stage_defaults_fill_what_nobody_set():
    env = build_env(base={"PATH": "/bin"}, caller={}, services=SERVICES, endpoints=ENDPOINTS, overrides={})
    stage = chalice_stage_env("local")
    assert env["PATH"] == "/bin" and env["TABLE_PREFIX"] == stage["TABLE_PREFIX"]
    assert env["PAY_TIMEOUT_MINUTES"] == stage["PAY_TIMEOUT_MINUTES"]  # the stage's value
    assert env["WECHAT_API_BASE"] == SERVICES["WECHAT_API_BASE"]  # the stack's simulator beats the stage's
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == ENDPOINTS["AWS_ENDPOINT_URL_DYNAMODB"]


def test_the_callers_environment_wins_over_the_stage_and_the_stack_services():
    caller = {"WECHAT_API_BASE": "http://127.0.0.1:9100", "PAY_TIMEOUT_MINUTES": "0.5", "AWS_ACCESS_KEY_ID": "mine",
              "TABLE_PREFIX": "", "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:4566"}
    env = build_env(base=caller, caller=caller, services=SERVICES, endpoints=ENDPOINTS, overrides={})
    assert env["WECHAT_API_BASE"] == "http://127.0.0.1:9100"
    assert env["PAY_TIMEOUT_MINUTES"] == "0.5" and env["AWS_ACCESS_KEY_ID"] == "mine"
    assert env["TABLE_PREFIX"] == chalice_stage_env("local")["TABLE_PREFIX"]  # empty counts as unset
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == ENDPOINTS["AWS_ENDPOINT_URL_DYNAMODB"]  # always the stack's own


def test_overrides_win_over_everything():
    env = build_env(base={}, caller={"PAY_TIMEOUT_MINUTES": "3"}, services=SERVICES, endpoints=ENDPOINTS,
                    overrides={"PAY_TIMEOUT_MINUTES": "0.5", "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:1"})
    assert env["PAY_TIMEOUT_MINUTES"] == "0.5" and env["AWS_ENDPOINT_URL_SQS"] == "http://127.0.0.1:1"


def test_library_mode_ignores_the_host_processes_app_settings(monkeypatch):
    monkeypatch.setenv("WECHAT_API_BASE", "http://127.0.0.1:9")  # as tests/conftest.py sets it
    monkeypatch.setenv("TABLE_PREFIX", "test-")
    stack = LocalStack(env_overrides={"CORS_ALLOW_ORIGINS": "http://x.test"})
    assert stack.env["WECHAT_API_BASE"] == stack.wechat_sim_url
    assert stack.env["WECHAT_PAY_NOTIFY_URL"] == stack.api_url
    assert stack.env["TABLE_PREFIX"] == chalice_stage_env("local")["TABLE_PREFIX"]
    assert stack.env["AWS_ENDPOINT_URL_SQS"] == stack.sqs_endpoint and stack.env["PATH"]
    assert stack.env["CORS_ALLOW_ORIGINS"] == "http://x.test"
    assert len(set(stack.ports.values())) == 4 and not stack.processes


def test_cli_mode_lets_the_callers_environment_win(monkeypatch):
    monkeypatch.setenv("WECHAT_API_BASE", "http://127.0.0.1:9100")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:4566")
    stack = LocalStack(inherit_env=True)
    assert stack.env["WECHAT_API_BASE"] == "http://127.0.0.1:9100"
    assert stack.env["AWS_ENDPOINT_URL_DYNAMODB"] == stack.dynamodb_endpoint
    assert stack.ignored_caller_endpoints == {"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:4566"}
    banner = stack.banner()
    assert "9100 (not the simulator)" in banner
    overridden = next(line for line in banner.splitlines() if "from your environment" in line)
    assert "WECHAT_API_BASE" in overridden and "AWS_ENDPOINT_URL_DYNAMODB" not in overridden


def test_chalice_local_config_lets_the_environment_beat_the_stage(monkeypatch):
    """`chalice local` copies the stage's env over os.environ; serve-api's config must not lose ours."""
    monkeypatch.setenv("WECHAT_API_BASE", "http://127.0.0.1:9100")
    monkeypatch.setenv("PAY_TIMEOUT_MINUTES", "0.5")
    monkeypatch.delenv("WECHAT_APPID", raising=False)
    _, config = chalice_local_config("local")
    assert config.environment_variables["WECHAT_API_BASE"] == "http://127.0.0.1:9100"
    assert config.environment_variables["PAY_TIMEOUT_MINUTES"] == "0.5"
    assert config.environment_variables["WECHAT_APPID"] == chalice_stage_env("local")["WECHAT_APPID"]


def test_the_banner_never_prints_a_password_of_the_callers_own(monkeypatch):
    monkeypatch.setenv("ADMIN_PASSWORD", "my-own-secret-password")
    banner = LocalStack(inherit_env=True).banner()
    assert "my-own-secret-password" not in banner and "$ADMIN_PASSWORD" in banner
    assert chalice_stage_env("local")["ADMIN_PASSWORD"] in LocalStack().banner()


def http(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.mark.e2e
@pytest.mark.dynamodb_local
def test_the_whole_stack_serves_login_through_the_simulator_and_stops_cleanly():
    with LocalStack(seed=False) as stack:
        assert http("GET", f"{stack.api_url}/health")[0] == 200
        status, login = http("POST", f"{stack.api_url}/v1/auth/login", {"code": "alice-1"})
        assert status == 200, login  # through the simulator on a free port, not the stage's 8003
        status, me = http("GET", f"{stack.api_url}/v1/me", token=login["token"])
        assert status == 200 and me["user_id"] == login["user"]["user_id"]
        status, admin = http("POST", f"{stack.api_url}/v1/admin/auth/login",
                             {"username": stack.env["ADMIN_USERNAME"], "password": stack.env["ADMIN_PASSWORD"]})
        assert status == 200 and admin["token"], admin
        for port in stack.ports.values():
            addresses = listening_addresses(port)
            assert addresses and addresses <= LOOPBACK_ADDRESSES, (port, addresses)
        assert stack.processes["worker"].alive() and stack.processes["provision"].returncode == 0
        processes = list(stack.processes.values())
    assert not any(process.alive() for process in processes)
    assert not any(port_is_open(port) for port in stack.ports.values())
