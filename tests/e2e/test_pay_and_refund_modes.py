"""On the running stack, in WeChat Pay v3 and v2 mode: order, pay through the simulator, refund
part of the order, and check that money reconciles (payments - refunds = what the order kept)."""
from __future__ import annotations

import time

import pytest

from local.stack import LocalStack
from tests.e2e.test_stack_flows import http

pytestmark = [pytest.mark.e2e, pytest.mark.dynamodb_local]


@pytest.fixture(scope="module", params=["v3", "v2"])
def stack(request):
    with LocalStack(seed=True, env_overrides={"WECHAT_PAY_VERSION": request.param}) as running:
        running.pay_version = request.param
        yield running


def _until(predicate, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return predicate()


def test_order_pay_partial_refund_and_money_reconciles(stack):
    api, sim = stack.api_url, stack.wechat_sim_url
    token = http("POST", f"{api}/v1/auth/login", {"code": f"jay{stack.pay_version}-1"})[1]["token"]
    status, order = http("POST", f"{api}/v1/orders", {
        "items": [{"sku_id": "sku-fuji-5", "quantity": 2}, {"sku_id": "sku-navel-5", "quantity": 1}],
        "delivery_method": "pickup", "store_id": "store-xuhui", "checkout_token": f"e2e-refund-{stack.pay_version}",
        "coupon_ids": []},  # no coupon (not even the new-user gift): the refund is the units' list price
        token=token)
    assert status == 201
    params = http("POST", f"{api}/v1/orders/{order['order_id']}/pay", token=token)[1]
    assert params["signType"] == ("RSA" if stack.pay_version == "v3" else "MD5")
    assert http("POST", f"{sim}/__sim/pay/request-payment", {**params, "wait": True})[1]["ok"]
    assert http("GET", f"{api}/v1/orders/{order['order_id']}", token=token)[1]["status"] == "paid"

    status, request = http("POST", f"{api}/v1/orders/{order['order_id']}/after-sales",
                           {"kind": "refund", "reason": "少了一个", "lines": [{"sku_id": "sku-fuji-5", "quantity": 1}]},
                           token=token)
    assert status == 201 and request["amount_fen"] == 3990
    admin = http("POST", f"{api}/v1/admin/auth/login", {"username": stack.env["ADMIN_USERNAME"],
                                                        "password": stack.env["ADMIN_PASSWORD"]})[1]["token"]
    assert http("POST", f"{api}/v1/admin/after-sales/{request['request_id']}/approve", token=admin)[0] == 200
    assert _until(lambda: http("GET", f"{api}/v1/after-sales/{request['request_id']}", token=token)[1]["status"]
                  == "refunded"), "the refund notify completed the request"

    view = http("GET", f"{api}/v1/admin/orders/{order['order_id']}", token=admin)[1]
    paid = sum(p["amount_fen"] for p in view["payments"])
    refunded = sum(r["amount_fen"] for r in view["refunds"] if r["status"] == "success")
    assert view["status"] == "paid" and (paid, refunded) == (order["payable_fen"], 3990)
    assert paid - refunded == order["payable_fen"] - request["amount_fen"]
    sku = http("GET", f"{api}/v1/admin/skus/sku-fuji-5", token=admin)[1]
    assert sku["sold"] == 1 and sku["stock_in"] == sku["available"] + sku["allocated"] + sku["reserved"] + sku["sold"]
