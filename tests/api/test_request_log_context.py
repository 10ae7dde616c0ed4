"""Every log line of a request names its request_id, and the order_id when the route has one."""
from __future__ import annotations

import uuid

from tests.api.helpers import call, json_log_lines, log_in, sim_fault


def _order(client, token) -> dict:
    status, order, _ = call(client, "POST", "/v1/orders", {
        "items": [{"sku_id": "sku-fuji-5", "quantity": 1}], "delivery_method": "pickup", "store_id": "store-xuhui",
        "checkout_token": uuid.uuid4().hex}, token=token)
    assert status == 201, order
    return order


def test_a_line_logged_on_an_order_route_names_the_order_even_when_the_code_does_not(client, demo_store, wechat_sim):
    token, _ = log_in(client)
    order = _order(client, token)
    sim_fault(wechat_sim, "pay_v3_jsapi", http_status=503)
    with json_log_lines() as lines:
        status, _, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=token)
        call(client, "POST", "/v1/auth/login", {"code": "alice-3"})  # the next request, on no order
    assert status == 502
    failed = next(line for line in lines if line["message"] == "request failed upstream")
    assert failed["order_id"] == order["order_id"]  # logged by the HTTP layer, which passes no order_id
    paying = [line for line in lines if line["request_id"] == failed["request_id"]]
    others = [line for line in lines if line["request_id"] != failed["request_id"]]
    assert len(paying) >= 2 and all(line["order_id"] == order["order_id"] for line in paying)
    assert others and all("order_id" not in line for line in others)


def test_each_request_has_its_own_request_id_and_nothing_leaks_into_the_next(client, demo_store):
    token, _ = log_in(client)
    with json_log_lines() as lines:
        first = _order(client, token)
        second = _order(client, token)
        call(client, "POST", f"/v1/orders/{first['order_id']}/cancel", token=token)
        call(client, "POST", "/v1/auth/login", {"code": "alice-2"})
    placed = [line for line in lines if line["message"] == "order placed"]
    cancelled = [line for line in lines if line["message"] == "order cancelled by the user"]
    login = [line for line in lines if line["message"] == "user logged in"]
    assert [line["order_id"] for line in placed] == [first["order_id"], second["order_id"]]
    assert cancelled[0]["order_id"] == first["order_id"]
    assert "order_id" not in login[0] and "user_id" in login[0]
    request_ids = [line["request_id"] for line in placed + cancelled + login]
    assert all(request_ids) and len(set(request_ids)) == 4
