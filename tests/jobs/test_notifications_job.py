"""The notifications worker: delivers subscribe messages once, retries transient failures only."""
from __future__ import annotations

import json

import pytest

from chalicelib import clock, queues
from chalicelib.errors import UpstreamError
from chalicelib.schemas.messages import SubscribeMessageJob
from chalicelib.services import notifications
from chalicelib.storage import subscriptions
from tests.api.helpers import log_in, sim_call, sim_fault


def _job(user_id: str, key: str = "order_shipped#o1") -> SubscribeMessageJob:
    return SubscribeMessageJob(message_key=key, user_id=user_id, template_id="tmpl-shipped",
                               page="pages/order/detail?id=o1",
                               data={"thing1": {"value": "红富士苹果"}, "character_string2": {"value": "SF123"}})


def _grant(user: dict) -> None:
    """The user accepted tmpl-shipped once (POST /v1/me/subscriptions): one message may be sent."""
    subscriptions.grant(user["user_id"], "tmpl-shipped", clock.now())


def _invoke(client, job: SubscribeMessageJob):
    event = client.events.generate_sqs_event(message_bodies=[job.model_dump_json()],
                                             queue_name=queues.NOTIFICATIONS.name)
    return client.lambda_.invoke("deliver_notifications", event)


def _sent(simulator) -> list[dict]:
    return sim_call(simulator, "GET", "/__sim/messages")["items"]


def test_a_queued_message_reaches_the_user_once_even_when_redelivered(client, wechat_sim):
    _, user = log_in(client)
    _grant(user)
    job = _job(user["user_id"])
    _invoke(client, job)
    _invoke(client, job)  # SQS delivers at least once
    sent = _sent(wechat_sim)
    assert len(sent) == 1
    assert sent[0]["template_id"] == "tmpl-shipped" and sent[0]["data"]["thing1"]["value"] == "红富士苹果"


def test_a_transient_wechat_failure_raises_for_redelivery_and_the_retry_sends(client, wechat_sim):
    _, user = log_in(client)
    _grant(user)
    sim_fault(wechat_sim, "subscribe_send", errcode=-1, errmsg="system error")
    with pytest.raises(UpstreamError):
        notifications.deliver_subscribe_message(_job(user["user_id"]))
    assert notifications.deliver_subscribe_message(_job(user["user_id"])) == "sent"
    assert len(_sent(wechat_sim)) == 1


def test_a_permanent_refusal_is_not_retried(client, wechat_sim):
    _, user = log_in(client)
    _grant(user)
    sim_fault(wechat_sim, "subscribe_send", errcode=43101, errmsg="user refuse to accept the msg")
    assert notifications.deliver_subscribe_message(_job(user["user_id"])) == "refused"
    assert notifications.deliver_subscribe_message(_job(user["user_id"])) == "duplicate"
    assert _sent(wechat_sim) == []


def test_a_message_for_an_unknown_user_is_dropped(client, wechat_sim):
    assert notifications.deliver_subscribe_message(_job("u-nobody")) == "unknown_user"
    assert _sent(wechat_sim) == []


def test_queueing_puts_the_job_on_the_notifications_queue(client):
    _, user = log_in(client)
    notifications.queue_subscribe_message(_job(user["user_id"], key="k1"))
    sqs = queues._client()
    messages = sqs.receive_message(QueueUrl=queues.queue_url(queues.NOTIFICATIONS.name),
                                   MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["message_key"] for m in messages] == ["k1"]


def test_the_scheduled_refresh_fetches_a_token_only_when_needed(client, wechat_sim):
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event",
                                            detail={}, resources=[])
    client.lambda_.invoke("refresh_wechat_access_token", event)
    client.lambda_.invoke("refresh_wechat_access_token", event)
    assert sim_call(wechat_sim, "GET", "/__sim/stats")["calls"]["stable_token"] == 1
