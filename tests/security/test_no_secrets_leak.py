"""No secret ever reaches a response body or a log line, and no personal data a log line.

The main flows run (login, phone binding, address, order, paying and refunding through the
WeChat simulator, the merchant's routes, a few failures) while every response body is recorded
and every log record is captured three ways: the JSON lines chalicelib.log formats (with their
request context), pytest's caplog records (message, fields, traceback) and stdout/stderr.
"""
from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest

from tests.api.helpers import admin_token, call, json_log_lines, log_in, sim_call, sim_fault, sim_session_keys
from tests.conftest import TEST_ENV, reset_process_caches
from tests.security.routes import ADDRESS

BOUND_PHONE = "13900139000"


@pytest.fixture
def recorded_bodies(client, monkeypatch):
    """Every response body the app gives, including to the simulator's notifies (notify_bridge)."""
    bodies: list[str] = []
    original = client.http.request

    def request(*args, **kwargs):
        response = original(*args, **kwargs)
        raw = response.body or b""
        bodies.append(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))
        return response

    monkeypatch.setattr(client.http, "request", request)
    return bodies


def _run_the_main_flows(client, wechat_sim) -> None:
    token, _ = log_in(client, "leak-1")
    assert call(client, "POST", "/v1/me/privacy-consent", {"version": "2026-01"}, token=token)[0] == 200
    assert call(client, "POST", "/v1/me/phone", {"code": f"phone-{BOUND_PHONE}"}, token=token)[0] == 200
    assert call(client, "GET", "/v1/me", token=token)[0] == 200
    address = call(client, "POST", "/v1/addresses", ADDRESS, token=token)[1]
    assert call(client, "GET", "/v1/addresses", token=token)[0] == 200
    status, order, _ = call(client, "POST", "/v1/orders", {
        "items": [{"sku_id": "sku-fuji-5", "quantity": 2}], "address_id": address["address_id"],
        "checkout_token": uuid.uuid4().hex}, token=token)
    assert status == 201, order
    params = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=token)[1]
    assert sim_call(wechat_sim, "POST", "/__sim/pay/request-payment", {**params, "wait": True})["ok"]
    request = call(client, "POST", f"/v1/orders/{order['order_id']}/after-sales",
                   {"kind": "refund", "reason": "少了一个", "lines": [{"sku_id": "sku-fuji-5", "quantity": 1}]},
                   token=token)[1]
    admin = admin_token(client)
    approved = call(client, "POST", f"/v1/admin/after-sales/{request['request_id']}/approve", token=admin)[1]
    if approved.get("out_refund_no"):
        sim_call(wechat_sim, "POST", "/__sim/pay/refund-notify",
                 {"out_refund_no": approved["out_refund_no"], "status": "SUCCESS", "wait": True})
    assert call(client, "GET", f"/v1/admin/orders/{order['order_id']}", token=admin)[0] == 200
    assert call(client, "POST", f"/v1/admin/orders/{order['order_id']}/ship",
                {"carrier": "顺丰速运", "tracking_no": "SF1234567890"}, token=admin)[0] == 200
    assert call(client, "POST", f"/v1/orders/{order['order_id']}/confirm-receipt", token=token)[0] == 200
    # and some failures, whose answers and log lines are where leaks usually hide
    assert call(client, "POST", "/v1/auth/login", {"code": "leak-1"})[0] == 401  # a used code
    sim_fault(wechat_sim, "getuserphonenumber", errcode=-1, errmsg="system error")
    assert call(client, "POST", "/v1/me/phone", {"code": f"phone-{BOUND_PHONE}"}, token=token)[0] == 502
    assert call(client, "GET", "/v1/me", token=token[:-4] + "AAAA")[0] == 401
    assert call(client, "POST", "/v1/admin/auth/login", {"username": "admin", "password": "wrong"})[0] == 401
    assert client.http.post("/v1/payments/wechat/v3/notify", headers={"Content-Type": "application/json"},
                            body=b'{"resource": {}}').status_code in (401, 404)  # 404 on a v2 store
    assert call(client, "POST", "/v1/auth/logout", token=token)[0] == 204


def _secrets(pay_keys, wechat_sim) -> dict[str, str]:
    _, env = pay_keys
    private_key = Path(env["WECHAT_PAY_PRIVATE_KEY"]).read_text()
    key_line = [line for line in private_key.splitlines() if line and not line.startswith("-----")][1]
    found = {"AppSecret": TEST_ENV["WECHAT_SECRET"], "token secret": TEST_ENV["AUTH_TOKEN_SECRET"],
             "admin password": TEST_ENV["ADMIN_PASSWORD"], "v2 API key": env["WECHAT_PAY_API_KEY"],
             "APIv3 key": env["WECHAT_PAY_APIV3_KEY"], "PEM header": "-----BEGIN", "private key text": key_line}
    keys = sim_session_keys(wechat_sim)
    assert keys, "the simulator issued session_keys"
    found.update({f"session_key {n}": key for n, key in enumerate(keys)})
    return found


PERSONAL = {"bound phone": BOUND_PHONE, "address phone": ADDRESS["phone"], "address detail": ADDRESS["detail"],
            "recipient": ADDRESS["name"]}


@pytest.mark.parametrize("pay_version", ["v3", "v2"])
def test_no_secret_in_bodies_or_logs_and_no_personal_data_in_logs(
        client, demo_store, wechat_sim, notify_bridge, pay_keys, recorded_bodies, caplog, capsys, monkeypatch,
        pay_version):
    monkeypatch.setenv("WECHAT_PAY_VERSION", pay_version)
    reset_process_caches()
    wechat_sim.state.pay.refund_delay_ms = None  # the refund notify comes when the flow asks for it
    caplog.set_level(logging.INFO)
    with json_log_lines() as lines:
        _run_the_main_flows(client, wechat_sim)

    records = "\n".join(f"{record.getMessage()} {json.dumps(getattr(record, 'fields', {}), default=str)} "
                        f"{record.exc_text or ''}" for record in caplog.records)
    printed = capsys.readouterr()
    logs = {"JSON lines": "\n".join(json.dumps(line, ensure_ascii=False) for line in lines), "caplog": records,
            "stdout": printed.out, "stderr": printed.err}
    assert "order placed" in logs["JSON lines"] and "order paid" in logs["JSON lines"], "the capture works"
    bodies = "\n".join(recorded_bodies)
    secrets = _secrets(pay_keys, wechat_sim)

    leaks = [(name, where) for name, value in secrets.items() for where, text in logs.items() if value in text]
    leaks += [(name, "response bodies") for name, value in secrets.items() if value in bodies]
    leaks += [(name, where) for name, value in PERSONAL.items() for where, text in logs.items() if value in text]
    leaks += [("bound phone", "response bodies")] if BOUND_PHONE in bodies else []
    assert leaks == []
