"""Shipping info to WeChat: queued when an order ships (or virtual goods are paid), uploaded by
the worker to the simulator over HTTP, retried while WeChat refuses for now, recorded once."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from chalicelib import clock, queues
from chalicelib.errors import UpstreamError
from chalicelib.schemas.shipping import ShippingUploadJob
from chalicelib.services import shipping_info
from chalicelib.storage import alerts, orders
from tests.api.helpers import admin_token, call, log_in, sim_call, sim_fault

ADDRESS = {"name": "张三", "phone": "13800138000", "province": "上海市", "city": "上海市", "district": "徐汇区",
           "detail": "漕溪北路88号"}
SF = {"carrier": "顺丰速运", "tracking_no": "SF1234567890"}
ITEMS = {"express": ("sku-durian-3kg", {}), "pickup": ("sku-durian-3kg", {"store_id": "store-xuhui"}),
         "none": ("sku-giftcard-100", {})}


# ------------------------------------------------------------------ helpers (shared with the job tests)

def place_and_pay(client, wechat_sim, token: str, method: str) -> dict:
    """An order of `method` (express / pickup / none), paid through the simulator."""
    sku, extra = ITEMS[method]
    if method == "express":
        status, address, _ = call(client, "POST", "/v1/addresses", ADDRESS, token=token)
        assert status == 201, address
        extra = {"address_id": address["address_id"]}
    status, order, _ = call(client, "POST", "/v1/orders", {
        "items": [{"sku_id": sku, "quantity": 1}], "delivery_method": method, "checkout_token": uuid.uuid4().hex,
        **extra}, token=token)
    assert status == 201, order
    status, params, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=token)
    assert status == 200, params
    sim_call(wechat_sim, "POST", "/__sim/pay/request-payment", {**params, "wait": True})
    assert orders.get_order(order["order_id"]).status == "paid"
    return order


def ship(client, order_id: str, body: dict = SF) -> tuple[int, dict]:
    status, answer, _ = call(client, "POST", f"/v1/admin/orders/{order_id}/ship", body, token=admin_token(client))
    return status, answer


def queued(spec=queues.SHIPPING_UPLOADS) -> list[dict]:
    sqs = queues._client()
    messages = sqs.receive_message(QueueUrl=queues.queue_url(spec.name), MaxNumberOfMessages=10,
                                   VisibilityTimeout=0).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def delayed(spec=queues.SHIPPING_UPLOADS) -> int:
    attributes = queues._client().get_queue_attributes(QueueUrl=queues.queue_url(spec.name),
                                                       AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"])


def uploads(wechat_sim, order: dict) -> list[dict]:
    return sim_call(wechat_sim, "GET", f"/__sim/shipping?out_trade_no={order['out_trade_no']}")["items"]


def upload_state(order: dict) -> dict:
    return orders.get_order(order["order_id"]).shipping_upload


def run(order: dict) -> str:
    return shipping_info.upload_shipping_info(ShippingUploadJob(order_id=order["order_id"], reason="shipped"))


@pytest.fixture
def shopper(client, demo_store, notify_bridge):
    token, user = log_in(client)
    return token, user


# ------------------------------------------------------------------ the three logistics types

def test_an_express_order_uploads_its_carrier_code_and_tracking_number(client, wechat_sim, shopper):
    token, _ = shopper
    order = place_and_pay(client, wechat_sim, token, "express")
    status, shipped = ship(client, order["order_id"])
    assert status == 200 and shipped["shipping_upload"]["status"] == "pending"
    assert queued() == [{"kind": "shipping_upload", "order_id": order["order_id"], "reason": "shipped"}]
    assert run(order) == "uploaded"
    [upload] = uploads(wechat_sim, order)
    stored = orders.get_order(order["order_id"])
    assert upload["logistics_type"] == 1 and upload["delivery_mode"] == 1
    assert upload["order_number_type"] == 2 and upload["transaction_id"] == stored.transaction_id
    assert upload["shipping_list"] == [{"tracking_no": "SF1234567890", "express_company": "SF",
                                        "item_desc": f"{order['lines'][0]['name']}*1",
                                        "contact": {"receiver_contact": "138****8000"}}]
    assert upload["upload_time"] == clock.to_iso(stored.shipped_at)
    view = call(client, "GET", f"/v1/admin/orders/{order['order_id']}", token=admin_token(client))[1]
    assert view["shipping_upload"]["status"] == "uploaded" and view["shipping_upload"]["attempts"] == 1
    assert view["shipping_upload"]["uploaded_at"] and view["shipping_upload"]["errcode"] is None


def test_a_pickup_order_marked_ready_uploads_user_pickup_without_tracking(client, wechat_sim, shopper):
    token, _ = shopper
    order = place_and_pay(client, wechat_sim, token, "pickup")
    assert ship(client, order["order_id"], {"carrier": "到店自提", "tracking_no": "READY-0001"})[0] == 200
    assert run(order) == "uploaded"
    [upload] = uploads(wechat_sim, order)
    assert upload["logistics_type"] == 4
    assert upload["shipping_list"] == [{"item_desc": f"{order['lines'][0]['name']}*1"}]


def test_virtual_goods_upload_when_paid_and_shipping_them_queues_nothing_more(client, wechat_sim, shopper):
    token, user = shopper
    order = place_and_pay(client, wechat_sim, token, "none")
    assert upload_state(order)["status"] == "pending" and upload_state(order)["logistics_type"] == 3
    # queued with a one-minute delay: WeChat answers 10060001 until a new payment reaches it
    assert queued() == [] and delayed() == 1
    assert run(order) == "uploaded"
    [upload] = uploads(wechat_sim, order)
    assert upload["logistics_type"] == 3 and upload["payer_openid"]
    assert upload["upload_time"] == clock.to_iso(orders.get_order(order["order_id"]).paid_at)
    assert ship(client, order["order_id"], {"carrier": "电子卡券", "tracking_no": "CARD-0001"})[0] == 200
    assert upload_state(order)["status"] == "uploaded" and queued() == []


def test_a_duplicate_payment_notify_queues_the_virtual_upload_once(client, wechat_sim, shopper):
    token, _ = shopper
    order = place_and_pay(client, wechat_sim, token, "none")
    sim_call(wechat_sim, "POST", "/__sim/pay/pay", {"out_trade_no": order["out_trade_no"], "wait": True})
    assert upload_state(order)["attempts"] == 0 and upload_state(order)["status"] == "pending"


# ------------------------------------------------------------------ carriers

def test_an_unknown_carrier_is_refused_before_the_order_ships(client, wechat_sim, shopper):
    token, _ = shopper
    order = place_and_pay(client, wechat_sim, token, "express")
    status, error = ship(client, order["order_id"], {"carrier": "某某快运", "tracking_no": "X12345678"})
    assert status == 400 and error["Code"] == "unknown_carrier" and error["Details"][0]["field"] == "carrier"
    assert orders.get_order(order["order_id"]).status == "paid" and upload_state(order) is None
    assert ship(client, order["order_id"], {"carrier": "ZTO", "tracking_no": "ZT12345678"})[0] == 200
    assert run(order) == "uploaded"
    assert uploads(wechat_sim, order)[0]["shipping_list"][0]["express_company"] == "ZTO"
    assert "contact" not in uploads(wechat_sim, order)[0]["shipping_list"][0]  # only SF needs a phone


def test_carrier_names_map_to_wechat_delivery_ids():
    assert [shipping_info.carrier_code(name) for name in ("顺丰速运", "中通快递", "圆通速递", "韵达速递", "申通快递",
                                                          "京东物流", "邮政EMS", "DB", " 顺丰速运 ")] == [
        "SF", "ZTO", "YTO", "YD", "STO", "JD", "EMS", "DB", "SF"]
    assert shipping_info.carrier_code("顺丰") is None and shipping_info.carrier_code("sf") is None


def test_item_desc_and_phone_masking_fit_wechat_limits():
    from tests.storage.order_fixtures import make_order

    order = make_order("o-long", {f"s{i}": 2 for i in range(40)})
    desc = shipping_info.item_desc(order)
    assert len(desc) == 120 and desc.endswith("...") and desc.startswith("苹果*2;苹果*2")
    assert shipping_info.mask_phone("13800138000") == "138****8000"
    assert shipping_info.mask_phone("66881234") == "****1234"


# ------------------------------------------------------------------ retries and refusals

def test_a_transient_refusal_raises_for_redelivery_then_the_retry_uploads(client, wechat_sim, shopper):
    token, _ = shopper
    order = place_and_pay(client, wechat_sim, token, "express")
    ship(client, order["order_id"])
    sim_fault(wechat_sim, "upload_shipping_info", errcode=10060001, errmsg="支付单不存在")
    with pytest.raises(UpstreamError):
        run(order)
    state = upload_state(order)
    assert (state["status"], state["attempts"], state["errcode"]) == ("pending", 1, 10060001)
    sim_fault(wechat_sim, "upload_shipping_info", http_status=503)  # then WeChat is unreachable
    with pytest.raises(UpstreamError):
        run(order)
    assert run(order) == "uploaded"
    state = upload_state(order)
    assert (state["status"], state["attempts"], state.get("errcode")) == ("uploaded", 3, None)
    assert len(uploads(wechat_sim, order)) == 1


def test_a_permanent_refusal_is_recorded_with_an_alert_and_not_retried(client, wechat_sim, shopper):
    token, _ = shopper
    order = place_and_pay(client, wechat_sim, token, "pickup")
    ship(client, order["order_id"], {"carrier": "到店自提", "tracking_no": "READY-0002"})
    sim_fault(wechat_sim, "upload_shipping_info", errcode=10060004, errmsg="支付单处于不可发货的状态")
    assert run(order) == "failed"
    state = upload_state(order)
    assert (state["status"], state["errcode"], state["errmsg"]) == ("failed", 10060004, "支付单处于不可发货的状态")
    [alert], _ = alerts.list_alerts(shipping_info.ALERT_KIND, 10, None)
    assert alert.detail["order_id"] == order["order_id"] and alert.detail["errcode"] == 10060004
    assert run(order) == "duplicate"
    assert uploads(wechat_sim, order) == []
    admin_alerts = call(client, "GET", "/v1/admin/alerts?kind=shipping_upload_failed", token=admin_token(client))[1]
    assert [a["kind"] for a in admin_alerts["items"]] == ["shipping_upload_failed"]


def test_transient_refusals_give_up_after_max_attempts(client, wechat_sim, shopper, monkeypatch):
    monkeypatch.setattr(shipping_info, "MAX_ATTEMPTS", 2)
    token, _ = shopper
    order = place_and_pay(client, wechat_sim, token, "express")
    ship(client, order["order_id"])
    sim_fault(wechat_sim, "upload_shipping_info", errcode=-1, errmsg="system error", times=2)
    with pytest.raises(UpstreamError):
        run(order)
    assert run(order) == "failed"
    assert upload_state(order)["errcode"] == -1 and upload_state(order)["attempts"] == 2
    assert len(alerts.list_alerts(shipping_info.ALERT_KIND, 10, None)[0]) == 1


def test_a_redelivered_message_for_an_uploaded_order_changes_nothing(client, wechat_sim, shopper):
    token, _ = shopper
    order = place_and_pay(client, wechat_sim, token, "express")
    ship(client, order["order_id"])
    assert run(order) == "uploaded"
    before = upload_state(order)
    assert run(order) == "duplicate" and run(order) == "duplicate"
    assert upload_state(order) == before
    assert sim_call(wechat_sim, "GET", "/__sim/stats")["calls"]["upload_shipping_info"] == 1


def test_a_message_another_worker_holds_is_left_for_redelivery(client, wechat_sim, shopper):
    from chalicelib.storage import idempotency

    token, _ = shopper
    order = place_and_pay(client, wechat_sim, token, "express")
    ship(client, order["order_id"])
    idempotency.claim(f"shipping_upload#{order['order_id']}", clock.now(), timedelta(minutes=2), timedelta(days=1))
    with pytest.raises(UpstreamError):
        run(order)
    assert sim_call(wechat_sim, "GET", "/__sim/stats")["calls"]["upload_shipping_info"] == 0


def test_an_order_refunded_before_its_upload_is_not_uploaded(client, wechat_sim, shopper):
    token, _ = shopper
    order = place_and_pay(client, wechat_sim, token, "none")
    orders.OrderRecord(order["order_id"]).update(actions=[orders.OrderRecord.status.set("refunded")])
    assert run(order) == "skipped"
    assert upload_state(order)["status"] == "failed" and uploads(wechat_sim, order) == []
    assert alerts.list_alerts(shipping_info.ALERT_KIND, 10, None)[0] == []


# ------------------------------------------------------------------ queueing never fails the request; the sweep

def test_a_queue_failure_does_not_fail_shipping_and_the_sweep_requeues_it_once(client, wechat_sim, shopper,
                                                                               monkeypatch):
    token, _ = shopper
    order = place_and_pay(client, wechat_sim, token, "express")

    def broken(*args, **kwargs):
        raise RuntimeError("SQS is down")

    with monkeypatch.context() as patch:
        patch.setattr(queues, "send_message", broken)
        status, shipped = ship(client, order["order_id"])
    assert status == 200 and shipped["status"] == "shipped" and queued() == []
    assert shipping_info.sweep_stalled_uploads() == {}  # not idle long enough yet
    with clock.frozen_at(clock.now() + shipping_info.SWEEP_IDLE_AFTER + timedelta(minutes=1)):
        assert shipping_info.sweep_stalled_uploads() == {"requeued": 1}
        assert shipping_info.sweep_stalled_uploads() == {}  # its idle time starts again
    assert [m["reason"] for m in queued()] == ["sweep"]
    assert run(order) == "uploaded"


def test_the_sweep_starts_uploads_that_were_never_started(client, wechat_sim, shopper, monkeypatch):
    token, _ = shopper
    with monkeypatch.context() as patch:  # the pending write itself failed after the state changes
        patch.setattr(orders, "update_shipping_upload", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("x")))
        virtual = place_and_pay(client, wechat_sim, token, "none")
        express = place_and_pay(client, wechat_sim, token, "express")
        assert ship(client, express["order_id"])[0] == 200
    assert upload_state(virtual) is None and upload_state(express) is None
    with clock.frozen_at(clock.now() + shipping_info.SWEEP_IDLE_AFTER + timedelta(minutes=1)):
        assert shipping_info.sweep_stalled_uploads() == {"requeued": 2}
    assert (upload_state(virtual)["logistics_type"], upload_state(express)["logistics_type"]) == (3, 1)
    assert sorted(m["order_id"] for m in queued()) == sorted([virtual["order_id"], express["order_id"]])
    assert run(virtual) == "uploaded" and run(express) == "uploaded"


def test_the_sweep_leaves_finished_and_unpaid_orders_alone(client, wechat_sim, shopper):
    token, _ = shopper
    order = place_and_pay(client, wechat_sim, token, "express")
    ship(client, order["order_id"])
    run(order)
    call(client, "POST", "/v1/orders", {"items": [{"sku_id": "sku-giftcard-100", "quantity": 1}],
                                        "delivery_method": "none", "checkout_token": uuid.uuid4().hex}, token=token)
    with clock.frozen_at(clock.now() + timedelta(hours=1)):
        assert shipping_info.sweep_stalled_uploads() == {}


# ------------------------------------------------------------------ the conditional write

def test_the_upload_state_changes_only_from_the_state_it_expects(aws):
    from tests.storage.order_fixtures import make_order, make_product

    make_product(skus={"s1": 5})
    order = make_order("o-cond", {"s1": 1})
    orders.to_record(order).save()
    now = clock.now()
    fresh = {"status": "pending", "logistics_type": 4, "attempts": 0, "updated_at": now}
    assert orders.update_shipping_upload("o-cond", fresh, expected_status=None)
    assert not orders.update_shipping_upload("o-cond", fresh, expected_status=None)  # started once
    assert not orders.update_shipping_upload("o-cond", {**fresh, "status": "uploaded"}, expected_status="failed")
    stale = now - timedelta(minutes=1)
    assert not orders.update_shipping_upload("o-cond", fresh, expected_status="pending", expected_updated_at=stale)
    assert orders.update_shipping_upload("o-cond", {**fresh, "status": "uploaded"}, expected_status="pending",
                                         expected_updated_at=now)
    assert orders.get_order("o-cond").shipping_upload["status"] == "uploaded"
    assert not orders.update_shipping_upload("o-missing", fresh, expected_status=None)  # never creates an order
    assert orders.get_order("o-missing") is None
