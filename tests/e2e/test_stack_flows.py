"""End to end on the running local stack: the API, the worker, SQS and the WeChat simulator,
all as separate processes talking HTTP on loopback."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import boto3
import pytest

from chalicelib.schemas.messages import SubscribeMessageJob
from local.stack import LocalStack
from local.wechat_sim.identity import openid_for

pytestmark = [pytest.mark.e2e, pytest.mark.dynamodb_local]


def http(method: str, url: str, body=None, token: str | None = None, raw: bytes | None = None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


PAY_TIMEOUT_SECONDS = 3


@pytest.fixture(scope="module")
def stack():
    # A short payment timeout, set the way `PAY_TIMEOUT_MINUTES=0.05 make run` would.
    with LocalStack(env_overrides={"PAY_TIMEOUT_MINUTES": str(PAY_TIMEOUT_SECONDS / 60),
                                   "WECHAT_TEMPLATE_ORDER_SHIPPED": "tmpl-e2e"}) as running:
        yield running


def wait_for(predicate, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    return predicate()


def test_the_demo_flow_login_me_and_profile_works_over_http(stack):
    status, login = http("POST", f"{stack.api_url}/v1/auth/login", {"code": "erin-1"})
    assert status == 200, login
    status, me = http("PATCH", f"{stack.api_url}/v1/me", {"nickname": "小鲜"}, token=login["token"])
    assert status == 200 and me["nickname"] == "小鲜"
    assert http("POST", f"{stack.api_url}/v1/me/privacy-consent", {"version": "2026-01"}, token=login["token"])[0] == 200
    status, me = http("POST", f"{stack.api_url}/v1/me/phone", {"code": "phone-13800138000"}, token=login["token"])
    assert status == 200 and me["phone_masked"] == "138****8000"


def test_bad_requests_get_the_envelope_over_http(stack):
    status, body = http("POST", f"{stack.api_url}/v1/auth/login", raw=b"{not json")
    assert status == 400 and body["Code"] == "invalid_json"
    status, body = http("POST", f"{stack.api_url}/v1/auth/login", {"code": "never-issued!"})
    assert status == 400 and body["Details"][0]["field"] == "code"
    status, body = http("GET", f"{stack.api_url}/v1/me", token="v1.forged.token")
    assert status == 401 and body["Code"] == "invalid_token"


def test_the_worker_delivers_a_queued_subscribe_message_once(stack):
    status, login = http("POST", f"{stack.api_url}/v1/auth/login", {"code": "frank-1"})
    assert status == 200
    # wx.requestSubscribeMessage: WeChat records the acceptance, the mini-program tells the app.
    http("POST", f"{stack.wechat_sim_url}/__sim/subscribe/accept",
         {"openid": openid_for(stack.env["WECHAT_APPID"], "frank-1"), "template_id": "tmpl-e2e"})
    status, quota = http("POST", f"{stack.api_url}/v1/me/subscriptions", {"template_id": "tmpl-e2e", "accepted": True},
                         token=login["token"])
    assert status == 200 and quota["remaining"] == 1
    sqs = boto3.client("sqs", endpoint_url=stack.sqs_endpoint, region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")
    queue_url = sqs.get_queue_url(QueueName=f"{stack.env['TABLE_PREFIX']}notifications")["QueueUrl"]
    job = SubscribeMessageJob(message_key="e2e#1", user_id=login["user"]["user_id"], template_id="tmpl-e2e",
                              data={"thing1": {"value": "订单已发货"}})
    for _ in range(2):  # a duplicate, as SQS may deliver
        sqs.send_message(QueueUrl=queue_url, MessageBody=job.model_dump_json())
    deadline = time.monotonic() + 30
    messages: list = []
    while time.monotonic() < deadline:
        messages = http("GET", f"{stack.wechat_sim_url}/__sim/messages")[1]["items"]
        remaining = int(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
                        ["ApproximateNumberOfMessages"])
        if messages and remaining == 0:
            break
        time.sleep(0.5)
    time.sleep(2)  # give a wrongly repeated delivery the chance to show up
    messages = http("GET", f"{stack.wechat_sim_url}/__sim/messages")[1]["items"]
    assert [m["template_id"] for m in messages] == ["tmpl-e2e"]


def test_the_demo_flow_browse_cart_preview_order_cancel_over_http(stack):
    api = stack.api_url
    token = http("POST", f"{api}/v1/auth/login", {"code": "gina-1"})[1]["token"]
    tree = http("GET", f"{api}/v1/categories")[1]["items"]
    assert {node["name"] for node in tree} >= {"水果", "礼品卡"}
    products = http("GET", f"{api}/v1/products?q=%E8%8B%B9%E6%9E%9C")[1]["items"]  # 苹果
    assert products, "search for 苹果 finds the apples"
    detail = http("GET", f"{api}/v1/products/{products[0]['product_id']}")[1]
    sku_id = detail["skus"][0]["sku_id"]
    assert http("POST", f"{api}/v1/cart/items", {"sku_id": sku_id, "quantity": 2}, token=token)[0] == 200
    status, quote = http("POST", f"{api}/v1/checkout/preview", {"delivery_method": "pickup", "store_id": "store-xuhui"},
                         token=token)
    # The demo store gives a new user 新人无门槛5元 at first login; preview applies it by itself.
    assert status == 200 and quote["goods_fen"] == 2 * detail["skus"][0]["price_fen"]
    assert [(a["kind"], a["amount_fen"]) for a in quote["adjustments"]] == [("coupon", 500)]
    assert quote["payable_fen"] == quote["goods_fen"] - 500
    status, order = http("POST", f"{api}/v1/orders", {"delivery_method": "pickup", "store_id": "store-xuhui",
                                                      "checkout_token": "e2e-demo-flow-1"}, token=token)
    assert status == 201 and order["payable_fen"] == quote["payable_fen"]
    assert http("GET", f"{api}/v1/cart", token=token)[1]["lines"] == []
    status, cancelled = http("POST", f"{api}/v1/orders/{order['order_id']}/cancel", token=token)
    assert status == 200 and cancelled["status"] == "cancelled"


def test_an_unpaid_order_is_closed_by_the_worker_at_its_deadline(stack):
    api = stack.api_url
    token = http("POST", f"{api}/v1/auth/login", {"code": "hank-1"})[1]["token"]
    status, order = http("POST", f"{api}/v1/orders", {
        "items": [{"sku_id": "sku-giftcard-100", "quantity": 1}], "checkout_token": "e2e-timeout-1"}, token=token)
    assert status == 201 and order["status"] == "pending_payment"
    closed = wait_for(lambda: http("GET", f"{api}/v1/orders/{order['order_id']}", token=token)[1]["status"]
                      == "cancelled", seconds=PAY_TIMEOUT_SECONDS + 30)
    assert closed, "the pay-deadline timer (or the sweep) closed the order"


def test_pay_through_the_simulator_then_ship_and_confirm_over_http(stack):
    api, sim = stack.api_url, stack.wechat_sim_url
    token = http("POST", f"{api}/v1/auth/login", {"code": "ivy-1"})[1]["token"]
    status, order = http("POST", f"{api}/v1/orders", {
        "items": [{"sku_id": "sku-navel-5", "quantity": 1}], "delivery_method": "pickup", "store_id": "store-xuhui",
        "checkout_token": "e2e-pay-1"}, token=token)
    assert status == 201
    status, params = http("POST", f"{api}/v1/orders/{order['order_id']}/pay", token=token)
    assert status == 200 and params["signType"] == "RSA"
    status, paid = http("POST", f"{sim}/__sim/pay/request-payment", {**params, "wait": True})
    assert status == 200 and paid["ok"], paid
    assert http("GET", f"{api}/v1/orders/{order['order_id']}", token=token)[1]["status"] == "paid"
    admin = http("POST", f"{api}/v1/admin/auth/login", {"username": stack.env["ADMIN_USERNAME"],
                                                        "password": stack.env["ADMIN_PASSWORD"]})[1]["token"]
    status, shipped = http("POST", f"{api}/v1/admin/orders/{order['order_id']}/ship",
                           {"carrier": "顺丰速运", "tracking_no": "SF1000000001"}, token=admin)
    assert status == 200 and shipped["status"] == "shipped"
    view = http("GET", f"{api}/v1/admin/orders/{order['order_id']}", token=admin)[1]
    assert [p["amount_fen"] for p in view["payments"]] == [order["payable_fen"]]
    status, done = http("POST", f"{api}/v1/orders/{order['order_id']}/confirm-receipt", token=token)
    assert status == 200 and done["status"] == "completed"


def test_a_flash_sale_hammered_over_http_drains_to_exactly_its_units(stack):
    from local.flash_hammer import hammer

    result = hammer(stack.api_url, users=40, entries_per_user=3, units=10, shards=4, threads=8,
                    sku="sku-giftcard-200", admin_username=stack.env["ADMIN_USERNAME"],
                    admin_password=stack.env["ADMIN_PASSWORD"])
    assert result["ok"], result
    assert result["orders"] == 10 and result["remaining"] == 0 and result["tickets"]["still_queued"] == 0
    assert result["most_won_by_one_buyer"] == 1


def test_a_waybill_tracking_push_and_a_return_through_receipt_to_refund_over_http(stack):
    """Issue 17's done-when on the stack: the merchant prints a waybill, the simulator pushes
    tracking, the buyer's order shows it, and a return flows through receipt to refund."""
    api, sim = stack.api_url, stack.wechat_sim_url
    token = http("POST", f"{api}/v1/auth/login", {"code": "kim-1"})[1]["token"]
    address = http("POST", f"{api}/v1/addresses", {"name": "金", "phone": "13800138000", "province": "上海市",
                                                  "city": "上海市", "district": "徐汇区", "detail": "漕溪北路1号"},
                   token=token)[1]
    order = http("POST", f"{api}/v1/orders", {"items": [{"sku_id": "sku-fuji-10", "quantity": 2}],
                                              "address_id": address["address_id"], "checkout_token": "e2e-return-1"},
                 token=token)[1]
    params = http("POST", f"{api}/v1/orders/{order['order_id']}/pay", token=token)[1]
    assert http("POST", f"{sim}/__sim/pay/request-payment", {**params, "wait": True})[1]["ok"]
    admin = http("POST", f"{api}/v1/admin/auth/login", {"username": stack.env["ADMIN_USERNAME"],
                                                        "password": stack.env["ADMIN_PASSWORD"]})[1]["token"]
    status, waybill = http("POST", f"{api}/v1/admin/orders/{order['order_id']}/waybill",
                           {"delivery_id": "SF", "biz_id": "SF_CASH", "weight_kg": 2.5}, token=admin)
    assert status == 201, waybill
    assert http("GET", f"{api}/v1/orders/{order['order_id']}", token=token)[1]["status"] == "shipped"
    for action_type in (100001, 300003):  # picked up, delivered: WeChat's signed pushes into the app
        status, pushed = http("POST", f"{sim}/__sim/logistics/push",
                              {"order_id": order["order_id"], "action_type": action_type})
        assert status == 200, pushed
    status, tracking = http("GET", f"{api}/v1/orders/{order['order_id']}/tracking", token=token)
    assert status == 200 and len(tracking["events"]) == 2, tracking
    status, request = http("POST", f"{api}/v1/orders/{order['order_id']}/after-sales",
                           {"kind": "return", "reason": "不新鲜"}, token=token)
    assert status == 201, request
    rid = request["request_id"]
    assert http("POST", f"{api}/v1/admin/after-sales/{rid}/approve", token=admin)[1]["status"] == "approved"
    assert http("POST", f"{api}/v1/after-sales/{rid}/return-shipment",
                {"carrier": "顺丰速运", "tracking_no": "SF3000000001"}, token=token)[0] == 200
    status, received = http("POST", f"{api}/v1/admin/after-sales/{rid}/receive", token=admin)
    assert status == 200 and received["status"] in ("refunding", "refunded"), received
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and http("GET", f"{api}/v1/after-sales/{rid}", token=token)[1]["status"] != "refunded":
        time.sleep(0.3)
    assert http("GET", f"{api}/v1/after-sales/{rid}", token=token)[1]["status"] == "refunded"
