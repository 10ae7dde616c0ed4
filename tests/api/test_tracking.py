"""Tracking: WeChat's path pushes are verified and stored once, polls merge with them, the buyer
sees their own order's events (another user's order is 404), key events reach the buyer once."""
from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.api.tracking import PUSH_ROUTE
from chalicelib.services import notifications, tracking_sweeps
from chalicelib.storage import waybills
from chalicelib.storage.tracking_events import TrackingEventRecord
from chalicelib.wechat.logistics import push_signature
from tests.api.helpers import assert_envelope, call, log_in
from tests.api.logistics_helpers import logistics_store  # noqa: F401  (a fixture)
from tests.api.logistics_helpers import (DELIVERED, IN_TRANSIT, OUT_FOR_DELIVERY, PICKED_UP, PUSH_TOKEN, create,
                                         paid_express_order, sim_push, tracking)


@pytest.fixture
def shipped(client, wechat_sim, logistics_store) -> tuple[dict, dict]:
    token, admin = logistics_store
    order = paid_express_order(client, wechat_sim, token)
    status, waybill = create(client, admin, order["order_id"])
    assert status == 201, waybill
    return order, waybill


def stored_events() -> list:
    return list(TrackingEventRecord.scan(consistent_read=True))


def signed_query(token: str = PUSH_TOKEN, timestamp: int | None = None, nonce: str = "n0nce") -> str:
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    return f"signature={push_signature(token, stamp, nonce)}&timestamp={stamp}&nonce={nonce}"


def push_body(waybill: dict, actions: list[tuple[int, int, str]]) -> dict:
    return {"ToUserName": "gh_x", "FromUserName": "o_x", "CreateTime": int(time.time()), "MsgType": "event",
            "Event": "add_express_path", "DeliveryID": "SF", "WayBillId": waybill["waybill_id"],
            "OrderId": waybill["wx_order_id"], "Version": len(actions), "Count": len(actions),
            "Actions": [{"ActionTime": t, "ActionType": k, "ActionMsg": m} for t, k, m in actions]}


def test_a_verified_push_stores_its_events_and_the_buyer_sees_them(client, wechat_sim, logistics_store, shipped):
    token, _ = logistics_store
    order, waybill = shipped
    answer = sim_push(wechat_sim, waybill["waybill_id"], PICKED_UP, action_msg="顺丰小哥已揽件")
    assert answer["deliveries"] == [{"status": 200, "body": "success"}]
    status, view = tracking(client, token, order["order_id"])
    assert status == 200 and view["order_status"] == "shipped"
    assert view["shipment"]["tracking_no"] == waybill["waybill_id"]
    assert [(e["stage"], e["description"]) for e in view["events"]] == [("picked_up", "顺丰小哥已揽件")]
    assert view["waybill"]["picked_up_at"] is not None and view["waybill"]["status"] == "created"


def test_a_forged_push_is_401_and_stores_nothing(client, wechat_sim, logistics_store, shipped):
    _, waybill = shipped
    answer = sim_push(wechat_sim, waybill["waybill_id"], PICKED_UP, forge=True)
    assert answer["deliveries"][0]["status"] == 401
    assert json.loads(answer["deliveries"][0]["body"])["Code"] == "invalid_signature"
    body = push_body(waybill, [(int(time.time()), PICKED_UP, "x")])
    for query in ("", signed_query(token="notTheToken"), signed_query(timestamp=int(time.time()) - 3600),
                  signed_query().replace("nonce=n0nce", "nonce=other")):
        status, error, _ = call(client, "POST", f"{PUSH_ROUTE}?{query}", body)
        assert status == 401, query
        assert_envelope(error)
    assert stored_events() == [] and waybills.get_waybill(waybill["order_id"]).picked_up_at is None


def test_the_same_push_twice_stores_each_event_once(client, wechat_sim, logistics_store, shipped):
    token, _ = logistics_store
    order, waybill = shipped
    answer = sim_push(wechat_sim, waybill["waybill_id"], PICKED_UP, times=2)
    assert [d["status"] for d in answer["deliveries"]] == [200, 200]
    sim_push(wechat_sim, waybill["waybill_id"], IN_TRANSIT)  # the whole path again, plus one scan
    assert len(stored_events()) == 2
    assert [e["stage"] for e in tracking(client, token, order["order_id"])[1]["events"]] == ["in_transit",
                                                                                             "picked_up"]


def test_a_push_with_a_bad_body_is_400_and_stores_nothing(client, logistics_store, shipped):
    _, waybill = shipped
    bad_action = push_body(waybill, [(int(time.time()), PICKED_UP, "x")])
    bad_action["Actions"][0]["ActionTime"] = "yesterday"
    for raw in ("not json", json.dumps([1, 2]), json.dumps(bad_action),
                json.dumps({**push_body(waybill, []), "OrderId": None})):
        status, error, _ = call(client, "POST", f"{PUSH_ROUTE}?{signed_query()}", raw=raw)
        assert status == 400, raw
        assert_envelope(error)
    assert stored_events() == []


def test_a_push_for_a_waybill_we_do_not_have_or_another_event_is_acknowledged_and_ignored(client, logistics_store,
                                                                                        shipped):
    _, waybill = shipped
    for body in (push_body({**waybill, "waybill_id": "SF999"}, [(int(time.time()), PICKED_UP, "x")]),
                 push_body({**waybill, "wx_order_id": "nobody"}, [(int(time.time()), PICKED_UP, "x")]),
                 {**push_body(waybill, [(int(time.time()), PICKED_UP, "x")]), "Event": "user_enter_tempsession"}):
        response = client.http.post(f"{PUSH_ROUTE}?{signed_query()}", body=json.dumps(body),
                                    headers={"Content-Type": "application/json"})
        assert (response.status_code, response.body) == (200, b"success")
    assert stored_events() == []


def test_wechat_checking_the_url_gets_echostr_back_only_when_signed(client, logistics_store):
    response = client.http.get(f"{PUSH_ROUTE}?{signed_query()}&echostr=4375120948345356249")
    assert (response.status_code, response.body) == (200, b"4375120948345356249")
    assert client.http.get(f"{PUSH_ROUTE}?{signed_query(token='wrong')}&echostr=1").status_code == 401


def test_a_poll_merges_with_the_pushed_events(client, wechat_sim, logistics_store, shipped):
    token, _ = logistics_store
    order, waybill = shipped
    sim_push(wechat_sim, waybill["waybill_id"], PICKED_UP)
    sim_push(wechat_sim, waybill["waybill_id"], IN_TRANSIT, action_msg="到达上海转运中心", push=False)
    sim_push(wechat_sim, waybill["waybill_id"], OUT_FOR_DELIVERY, action_msg="派送中", push=False)
    due = waybills.get_waybill(order["order_id"]).poll_at
    with clock.frozen_at(due + timedelta(minutes=1)):
        assert tracking_sweeps.sweep_polls() == {"new_events": 1}
        assert tracking_sweeps.sweep_polls() == {}  # polled: not due again for LOGISTICS_POLL_AFTER_HOURS
    events = tracking(client, token, order["order_id"])[1]["events"]
    assert [e["stage"] for e in events] == ["out_for_delivery", "in_transit", "picked_up"]
    assert sorted(event.source for event in stored_events()) == ["poll", "poll", "push"]
    assert waybills.get_waybill(order["order_id"]).last_poll_at is not None


def test_the_buyer_sees_only_their_own_orders_tracking(client, logistics_store, shipped):
    token, admin = logistics_store
    order, _ = shipped
    other, _ = log_in(client, "bob-1")
    status, error = tracking(client, other, order["order_id"])
    assert status == 404
    assert_envelope(error, "order_not_found")
    assert tracking(client, token, "no-such-order")[0] == 404
    assert tracking(client, admin, order["order_id"])[0] == 403  # an admin token on a buyer route
    status, view = tracking(client, admin, order["order_id"], admin=True)
    assert status == 200 and view["waybill"]["biz_id"] == "SF_CASH"


def test_key_events_ask_for_one_delivery_update_each_and_delivery_ends_the_watch(client, wechat_sim, logistics_store,
                                                                               shipped, monkeypatch):
    order, waybill = shipped
    asked = []
    monkeypatch.setattr(notifications, "notify_order_event",
                        lambda order, kind, now, **kw: asked.append((kind, kw.get("ref"))) or "queued")
    for action_type in (PICKED_UP, IN_TRANSIT, OUT_FOR_DELIVERY, DELIVERED):
        sim_push(wechat_sim, waybill["waybill_id"], action_type)
    sim_push(wechat_sim, waybill["waybill_id"], times=2)  # the whole path again, twice
    number = waybill["waybill_id"]
    assert asked == [("delivery_update", f"{number}-{PICKED_UP}"), ("delivery_update", f"{number}-{OUT_FOR_DELIVERY}"),
                     ("delivery_update", f"{number}-{DELIVERED}")]
    done = waybills.get_waybill(order["order_id"])
    assert done.status == waybills.DELIVERED and done.delivered_at and done.watch_at is None and done.poll_at is None
