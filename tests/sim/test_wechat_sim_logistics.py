"""The simulator's 物流助手 over real HTTP: addOrder answers the same waybill for the same
order_id, cancel refuses after a pickup scan, getPath and getAllDelivery answer WeChat's shapes,
and path pushes are signed as WeChat signs message pushes."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.wechat.logistics import push_signature
from local.wechat_sim import start_simulator

APP, SECRET, TOKEN = "wx_logistics_app", "logistics_secret", "simPushToken"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PERSON = {"name": "张三", "mobile": "13800138000", "province": "上海市", "city": "上海市", "area": "徐汇区",
          "address": "漕溪北路88号"}


def add_body(order_id: str = "o-1", **changes) -> dict:
    return {"add_source": 0, "order_id": order_id, "openid": "oBuyer", "delivery_id": "ZTO", "biz_id": "acct-1",
            "sender": PERSON, "receiver": PERSON,
            "cargo": {"count": 1, "weight": 1.2, "detail_list": [{"name": "榴莲", "count": 1}]},
            "shop": {"wxa_path": "/pages/index"}, "insured": {"use_insured": 0, "insured_value": 0},
            "service": {"service_type": 0, "service_name": "标准快件"}, **changes}


@pytest.fixture(scope="module")
def sim():
    simulator = start_simulator(apps={APP: SECRET})
    yield simulator
    simulator.stop()


class Api:
    def __init__(self, sim) -> None:
        self.sim = sim
        self.access_token = self.call("POST", "/cgi-bin/stable_token", {
            "grant_type": "client_credential", "appid": APP, "secret": SECRET})["access_token"]

    def call(self, method: str, path: str, body: object = None) -> dict:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        request = urllib.request.Request(self.sim.base_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with _OPENER.open(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read())

    def wx(self, method: str, path: str, body: object = None) -> dict:
        return self.call(method, f"/cgi-bin/express/business/{path}?access_token={self.access_token}", body)


@pytest.fixture
def api(sim):
    sim.state.reset()
    return Api(sim)


@pytest.fixture
def receiver():
    """A loopback server recording what the simulator pushes; answers `success`."""
    received: list[tuple[dict, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append(({k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}, json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "7")
            self.end_headers()
            self.wfile.write(b"success")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/push", received
    server.shutdown()
    server.server_close()


def test_add_order_answers_the_same_waybill_for_the_same_order_id(api):
    first = api.wx("POST", "order/add", add_body())
    assert first["errcode"] == 0 and first["waybill_id"].startswith("ZTO") and first["waybill_data"]
    again = api.wx("POST", "order/add", add_body())
    other = api.wx("POST", "order/add", add_body("o-2"))
    assert again["waybill_id"] == first["waybill_id"] != other["waybill_id"]
    assert len(api.call("GET", "/__sim/logistics/waybills")["items"]) == 2


@pytest.mark.parametrize("changes, errcode", [
    ({"delivery_id": "NOPE"}, 9300503),
    ({"biz_id": ""}, 47001),
    ({"receiver": {**PERSON, "mobile": None}}, 47001),
    ({"cargo": {"count": 1, "weight": 1, "detail_list": []}}, 47001),
    ({"service": {"service_type": 5, "service_name": "x"}}, 47001),
    ({"delivery_id": "SF", "service": {"service_type": 0, "service_name": "标准快递"}}, 47001),  # SF: expect_time
])
def test_add_order_checks_the_body_as_wechat_does(api, changes, errcode):
    assert api.wx("POST", "order/add", add_body(**changes))["errcode"] == errcode
    assert api.call("GET", "/__sim/logistics/waybills")["items"] == []


def test_an_access_token_is_required(api):
    assert api.call("POST", "/cgi-bin/express/business/order/add", add_body())["errcode"] == 41001
    assert api.call("GET", "/cgi-bin/express/business/delivery/getall?access_token=nope")["errcode"] == 40001


def test_cancel_before_pickup_only(api, receiver):
    url, _ = receiver
    api.call("POST", "/__sim/logistics/config", {"push_url": url, "token": TOKEN})
    waybill = api.wx("POST", "order/add", add_body())["waybill_id"]
    ids = {"order_id": "o-1", "openid": "oBuyer", "delivery_id": "ZTO", "waybill_id": waybill}
    assert api.wx("POST", "order/cancel", {**ids, "order_id": "o-9"})["errcode"] == 930563
    assert api.wx("POST", "order/cancel", {**ids, "waybill_id": "ZTO1"})["errcode"] == 40199
    assert api.wx("POST", "order/cancel", ids)["errcode"] == 0
    assert api.wx("POST", "order/cancel", ids)["errcode"] == 9300524
    second = api.wx("POST", "order/add", add_body("o-2"))["waybill_id"]
    api.call("POST", "/__sim/logistics/push", {"waybill_id": second, "action_type": 100001, "push": False})
    assert api.wx("POST", "order/cancel", {**ids, "order_id": "o-2", "waybill_id": second})["errcode"] == 9300506


def test_get_path_and_get_all_delivery_answer_wechats_shapes(api):
    waybill = api.wx("POST", "order/add", add_body())["waybill_id"]
    api.call("POST", "/__sim/logistics/push", {"waybill_id": waybill, "action_type": 100001, "action_time": 1700000000,
                                               "action_msg": "揽件", "push": False})
    path = api.wx("POST", "path/get", {"order_id": "o-1", "openid": "oBuyer", "delivery_id": "ZTO",
                                        "waybill_id": waybill})
    assert path["path_item_num"] == 1
    assert path["path_item_list"] == [{"action_time": 1700000000, "action_type": 100001, "action_msg": "揽件"}]
    carriers = api.wx("GET", "delivery/getall")
    assert carriers["count"] == len(carriers["data"]) and {"delivery_id", "delivery_name", "service_type"} <= set(
        carriers["data"][0])


def test_a_push_is_signed_like_a_wechat_message_push_and_carries_the_whole_path(api, receiver):
    url, received = receiver
    assert api.call("POST", "/__sim/logistics/config", {"push_url": "http://example.com/x"})["ok"] is False
    api.call("POST", "/__sim/logistics/config", {"push_url": url, "token": TOKEN})
    waybill = api.wx("POST", "order/add", add_body())["waybill_id"]
    api.call("POST", "/__sim/logistics/push", {"waybill_id": waybill, "action_type": 100001})
    answer = api.call("POST", "/__sim/logistics/push", {"waybill_id": waybill, "action_type": 200001, "times": 2})
    assert [d["status"] for d in answer["deliveries"]] == [200, 200]
    query, message = received[-1]
    assert query["signature"] == push_signature(TOKEN, query["timestamp"], query["nonce"])
    assert (message["Event"], message["OrderId"], message["WayBillId"], message["Count"]) == (
        "add_express_path", "o-1", waybill, 2)
    assert [a["ActionType"] for a in message["Actions"]] == [100001, 200001]
    api.call("POST", "/__sim/logistics/push", {"waybill_id": waybill, "forge": True})
    query, _ = received[-1]
    assert query["signature"] != push_signature(TOKEN, query["timestamp"], query["nonce"])


def test_wechats_own_example_signature():
    # developers.weixin.qq.com, 消息推送: Token AAAAA, timestamp 1714036504, nonce 1514711492
    assert push_signature("AAAAA", "1714036504", "1514711492") == "f464b24fc39322e44b38aa78f5edd27bd1441696"
