"""The shipping-uploads worker and sweep, invoked as Lambda would be (Chalice's test client)."""
from __future__ import annotations

import json
from datetime import timedelta

import pydantic
import pytest

from chalicelib import clock, queues
from chalicelib.errors import UpstreamError
from chalicelib.services import shipping_info
from chalicelib.storage import orders
from tests.api.helpers import log_in, sim_call, sim_fault
from tests.services.test_shipping_info import place_and_pay, ship, uploads


@pytest.fixture
def shopper(client, demo_store, notify_bridge):
    return log_in(client)[0]


def _receive() -> list[str]:
    """The bodies waiting on the shipping-uploads queue, as SQS would hand them to the Lambda."""
    sqs = queues._client()
    url = queues.queue_url(queues.SHIPPING_UPLOADS.name)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    return [message["Body"] for message in messages]


def _invoke(client, bodies: list[str]):
    event = client.events.generate_sqs_event(message_bodies=bodies, queue_name=queues.SHIPPING_UPLOADS.name)
    return client.lambda_.invoke("upload_shipping_infos", event)


def _calls(wechat_sim) -> int:
    return sim_call(wechat_sim, "GET", "/__sim/stats")["calls"]["upload_shipping_info"]


def test_the_message_the_ship_route_queues_is_the_one_the_worker_uploads_once(client, wechat_sim, shopper):
    order = place_and_pay(client, wechat_sim, shopper, "express")
    assert ship(client, order["order_id"])[0] == 200
    bodies = _receive()
    assert [json.loads(body)["order_id"] for body in bodies] == [order["order_id"]]
    _invoke(client, bodies)
    _invoke(client, bodies)  # SQS delivers at least once
    assert len(uploads(wechat_sim, order)) == 1 and _calls(wechat_sim) == 1
    assert orders.get_order(order["order_id"]).shipping_upload["status"] == "uploaded"


def test_a_transient_refusal_fails_the_invocation_so_sqs_redelivers(client, wechat_sim, shopper):
    order = place_and_pay(client, wechat_sim, shopper, "pickup")
    ship(client, order["order_id"], {"carrier": "到店自提", "tracking_no": "READY-0003"})
    bodies = _receive()
    sim_fault(wechat_sim, "upload_shipping_info", errcode=-1, errmsg="system error")
    with pytest.raises(UpstreamError):
        _invoke(client, bodies)
    _invoke(client, bodies)  # the redelivery
    assert [u["logistics_type"] for u in uploads(wechat_sim, order)] == [4]
    assert orders.get_order(order["order_id"]).shipping_upload["attempts"] == 2


def test_a_permanent_refusal_completes_the_invocation(client, wechat_sim, shopper):
    order = place_and_pay(client, wechat_sim, shopper, "express")
    ship(client, order["order_id"])
    sim_fault(wechat_sim, "upload_shipping_info", errcode=10060031, errmsg="该笔支付单不属于 openid 所指定的用户")
    _invoke(client, _receive())  # no exception: retrying could never succeed
    upload = orders.get_order(order["order_id"]).shipping_upload
    assert (upload["status"], upload["errcode"]) == ("failed", 10060031)


def test_a_malformed_message_is_refused_and_left_to_the_dead_letter_queue(client):
    with pytest.raises(pydantic.ValidationError):
        _invoke(client, [json.dumps({"kind": "shipping_upload", "order_id": "o1", "reason": "shipped", "x": 1})])


def test_the_scheduled_sweep_requeues_idle_uploads(client, wechat_sim, shopper, monkeypatch):
    order = place_and_pay(client, wechat_sim, shopper, "express")
    with monkeypatch.context() as patch:
        patch.setattr(queues, "send_message", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("SQS down")))
        assert ship(client, order["order_id"])[0] == 200
    assert _receive() == []
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                            resources=[])
    with clock.frozen_at(clock.now() + shipping_info.SWEEP_IDLE_AFTER + timedelta(minutes=1)):
        client.lambda_.invoke("sweep_shipping_uploads", event)
    bodies = _receive()
    assert [json.loads(body)["reason"] for body in bodies] == ["sweep"]
    _invoke(client, bodies)
    assert orders.get_order(order["order_id"]).shipping_upload["status"] == "uploaded"
