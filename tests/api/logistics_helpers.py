"""Shared by the logistics tests: a store set up for e-waybills and pushes, a paid express order."""
from __future__ import annotations

import json

import pytest

from chalicelib.api.tracking import PUSH_ROUTE
from chalicelib.services import waybills as waybill_service
from tests.api.helpers import admin_token, call, log_in, sim_call
from tests.services.test_shipping_info import place_and_pay

PUSH_TOKEN = "logisticsPushToken42"
SENDER = {"name": "鲜果园", "mobile": "13900000000", "province": "上海市", "city": "上海市",
          "area": "徐汇区", "address": "漕溪北路88号"}
SF = {"delivery_id": "SF", "biz_id": "SF_CASH", "weight_kg": 2.5, "expect_time": "2030-01-01T10:00:00+08:00"}
PICKED_UP, IN_TRANSIT, OUT_FOR_DELIVERY, DELIVERED = 100001, 200001, 300002, 300003


@pytest.fixture
def logistics_store(client, demo_store, notify_bridge, wechat_sim, monkeypatch):
    """The demo store with a sender address and a push Token; the simulator pushes into the app
    (through the notify bridge). Returns (buyer token, admin token)."""
    monkeypatch.setenv("LOGISTICS_SENDER", json.dumps(SENDER, ensure_ascii=False))
    monkeypatch.setenv("LOGISTICS_PUSH_TOKEN", PUSH_TOKEN)
    waybill_service.forget_carriers()
    push_url = f"http://127.0.0.1:{notify_bridge.server_address[1]}{PUSH_ROUTE}"
    sim_call(wechat_sim, "POST", "/__sim/logistics/config", {"push_url": push_url, "token": PUSH_TOKEN})
    token, _ = log_in(client)
    return token, admin_token(client)


def paid_express_order(client, wechat_sim, token: str) -> dict:
    return place_and_pay(client, wechat_sim, token, "express")


def create(client, admin: str, order_id: str, body: dict | None = None) -> tuple[int, dict]:
    status, answer, _ = call(client, "POST", f"/v1/admin/orders/{order_id}/waybill", SF if body is None else body,
                             token=admin)
    return status, answer


def sim_waybills(wechat_sim, order_id: str | None = None) -> list[dict]:
    query = f"?order_id={order_id}" if order_id else ""
    return sim_call(wechat_sim, "GET", f"/__sim/logistics/waybills{query}")["items"]


def sim_push(wechat_sim, waybill_id: str, action_type: int | None = None, **options) -> dict:
    body = {"waybill_id": waybill_id, **options}
    if action_type is not None:
        body["action_type"] = action_type
    return sim_call(wechat_sim, "POST", "/__sim/logistics/push", body)


def tracking(client, token: str, order_id: str, admin: bool = False) -> tuple[int, dict]:
    prefix = "/v1/admin/orders" if admin else "/v1/orders"
    status, answer, _ = call(client, "GET", f"{prefix}/{order_id}/tracking", token=token)
    return status, answer
