"""The simulator's 发货信息录入 (upload_shipping_info), over real HTTP.

The Pay side is set up in-process (a paid transaction in the simulator's book), since the
signed Pay APIs have their own tests; everything the endpoint does is then asked over HTTP.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from local.wechat_sim import start_simulator
from local.wechat_sim.pay_store import Refund, Transaction, book, mark_paid

APP, SECRET, OTHER_APP, OTHER_SECRET = "wx_ship_app", "ship_secret", "wx_other_app", "other_secret"
MCHID, OPENID = "1230000109", "oShipPayer0000000000000000001"
PATH = "/wxa/sec/order/upload_shipping_info"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def sim():
    simulator = start_simulator(apps={APP: SECRET, OTHER_APP: OTHER_SECRET})
    yield simulator
    simulator.stop()


@pytest.fixture
def api(sim):
    sim.state.reset()
    return Api(sim)


class Api:
    def __init__(self, sim) -> None:
        self.sim = sim

    def call(self, method: str, path: str, body: object = None) -> dict:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        request = urllib.request.Request(self.sim.base_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with _OPENER.open(request, timeout=5) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read())

    def token(self, appid: str = APP, secret: str = SECRET) -> str:
        return self.call("POST", "/cgi-bin/stable_token", {"grant_type": "client_credential", "appid": appid,
                                                           "secret": secret})["access_token"]

    def upload(self, body: dict, token: str | None = None) -> dict:
        return self.call("POST", f"{PATH}?access_token={token or self.token()}", body)

    def paid(self, out_trade_no: str = "T20240001", total: int = 1000, appid: str = APP) -> Transaction:
        """A transaction paid by OPENID, as if the user had paid through WeChat Pay."""
        state = self.sim.state
        txn = Transaction(api="v3", appid=appid, mchid=MCHID, out_trade_no=out_trade_no, description="苹果",
                          total=total, openid=OPENID, notify_url="http://127.0.0.1:9/notify", attach="",
                          time_expire=None, fingerprint="f", prepay_id=f"wx{out_trade_no}", created_at=state.now())
        with state.lock:
            book(state).transactions[out_trade_no] = txn
            mark_paid(book(state), txn, state.now())
        return txn


def _body(txn: Transaction, **changes) -> dict:
    body = {
        "order_key": {"order_number_type": 2, "transaction_id": txn.transaction_id},
        "logistics_type": 1, "delivery_mode": 1,
        "shipping_list": [{"tracking_no": "SF1234567890", "express_company": "SF", "item_desc": "红富士苹果*2",
                           "contact": {"receiver_contact": "138****8000"}}],
        "upload_time": "2024-05-01T12:00:00+08:00", "payer": {"openid": OPENID},
    }
    body.update(changes)
    return body


def test_an_express_upload_is_accepted_and_listed(api):
    txn = api.paid()
    assert api.upload(_body(txn)) == {"errcode": 0, "errmsg": "ok"}
    items = api.call("GET", f"/__sim/shipping?out_trade_no={txn.out_trade_no}")["items"]
    assert len(items) == 1
    assert items[0]["logistics_type"] == 1 and items[0]["transaction_id"] == txn.transaction_id
    assert items[0]["shipping_list"][0]["express_company"] == "SF" and items[0]["reshipped"] is False
    assert api.call("GET", "/__sim/shipping?out_trade_no=other")["items"] == []


@pytest.mark.parametrize("logistics_type", [3, 4])
def test_virtual_goods_and_pickup_need_no_tracking_and_may_use_mchid_and_out_trade_no(api, logistics_type):
    txn = api.paid()
    key = {"order_number_type": 1, "mchid": MCHID, "out_trade_no": txn.out_trade_no}
    body = _body(txn, order_key=key, logistics_type=logistics_type, shipping_list=[{"item_desc": "礼品卡*1"}])
    assert api.upload(body)["errcode"] == 0
    assert api.call("GET", "/__sim/shipping")["items"][0]["logistics_type"] == logistics_type


def test_an_unknown_unpaid_or_other_merchants_payment_is_10060001(api):
    txn = api.paid()
    unpaid = api.paid("T20240002")
    unpaid.trade_state, unpaid.transaction_id = "NOTPAY", None
    cases = [
        _body(txn, order_key={"order_number_type": 2, "transaction_id": "4200000000000000000000000000"}),
        _body(txn, order_key={"order_number_type": 1, "mchid": MCHID, "out_trade_no": "T20240002"}),
        _body(txn, order_key={"order_number_type": 1, "mchid": "1900000001", "out_trade_no": txn.out_trade_no}),
    ]
    for body in cases:
        assert api.upload(body)["errcode"] == 10060001
    # another mini-program's token does not reach this app's payments either
    assert api.upload(_body(txn), token=api.token(OTHER_APP, OTHER_SECRET))["errcode"] == 10060001
    assert api.call("GET", "/__sim/shipping")["items"] == []


def test_the_access_token_is_checked_first(api):
    txn = api.paid()
    assert api.call("POST", PATH, _body(txn))["errcode"] == 41001
    assert api.upload(_body(txn), token="not-a-token")["errcode"] == 40001


def test_a_payer_who_did_not_pay_is_10060031(api):
    txn = api.paid()
    assert api.upload(_body(txn, payer={"openid": "oSomeoneElse"}))["errcode"] == 10060031


def test_a_fully_refunded_payment_cannot_ship(api):
    txn = api.paid()
    state = api.sim.state
    with state.lock:
        refund = Refund(out_refund_no="R1", refund_id="503", out_trade_no=txn.out_trade_no,
                        transaction_id=txn.transaction_id, refund=txn.total, total=txn.total, api="v3",
                        notify_url=None, reason="", fingerprint="f", created_at=state.now(), status="SUCCESS")
        book(state).refunds["R1"] = refund
        txn.refunds.append("R1")
    assert api.upload(_body(txn))["errcode"] == 10060004


_ITEM = {"tracking_no": "SF1234567890", "express_company": "SF", "item_desc": "苹果*1",
         "contact": {"receiver_contact": "138****8000"}}


@pytest.mark.parametrize("changes, errcode", [
    ({"logistics_type": 5}, 47001),
    ({"delivery_mode": "UNIFIED_DELIVERY"}, 47001),
    ({"order_key": {"order_number_type": 2}}, 47001),
    ({"shipping_list": {"item_desc": "苹果*1"}}, 47001),  # an object, not an array
    ({"shipping_list": [{**_ITEM, "item_desc": ""}]}, 47001),
    ({"shipping_list": [{**_ITEM, "item_desc": "苹" * 121}]}, 47001),
    ({"shipping_list": [{"express_company": "SF", "item_desc": "苹果*1"}]}, 47001),  # no tracking_no
    ({"shipping_list": [{**_ITEM, "express_company": "顺丰速运"}]}, 47001),  # a name, not a delivery_id
    ({"shipping_list": [{k: v for k, v in _ITEM.items() if k != "contact"}]}, 47001),  # SF needs a contact
    ({"upload_time": "2024-05-01 12:00:00"}, 47001),
    ({"upload_time": "2024-05-01T12:00:00"}, 47001),  # no offset
    ({"payer": {}}, 47001),
    ({"logistics_type": 4, "delivery_mode": 2, "is_all_delivered": True}, 10060006),
    ({"shipping_list": [_ITEM, _ITEM]}, 268485228),
])
def test_malformed_bodies_are_refused_with_wechat_codes(api, changes, errcode):
    txn = api.paid()
    assert api.upload(_body(txn, **changes))["errcode"] == errcode
    assert api.call("GET", "/__sim/shipping")["items"] == []


def test_a_payment_ships_once_and_reships_once_with_a_later_upload_time(api):
    txn = api.paid()
    assert api.upload(_body(txn))["errcode"] == 0
    assert api.upload(_body(txn))["errcode"] == 47001  # not later than the first
    assert api.upload(_body(txn, upload_time="2024-05-01T13:00:00+08:00"))["errcode"] == 0
    assert api.upload(_body(txn, upload_time="2024-05-01T14:00:00+08:00"))["errcode"] == 10060003
    items = api.call("GET", f"/__sim/shipping?out_trade_no={txn.out_trade_no}")["items"]
    assert [item["reshipped"] for item in items] == [False, True]


def test_faults_are_injected_by_endpoint_name_and_calls_counted(api):
    txn = api.paid()
    fault = {"endpoint": "upload_shipping_info", "errcode": 10060001, "errmsg": "支付单不存在", "times": 1}
    assert api.call("POST", "/__sim/faults", fault)["ok"] is True
    token = api.token()
    assert api.upload(_body(txn), token=token)["errcode"] == 10060001
    assert api.upload(_body(txn), token=token)["errcode"] == 0
    assert api.call("GET", "/__sim/stats")["calls"]["upload_shipping_info"] == 2
