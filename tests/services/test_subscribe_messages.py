"""Order-event subscribe messages: queued only with quota, one unit spent per message whatever
SQS redelivers, 43101 spends nothing, and what arrives at the (quota-checking) simulator."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import clock, queues
from chalicelib.domain.pricing import QuoteLine
from chalicelib.errors import UpstreamError
from chalicelib.schemas.messages import SubscribeMessageJob
from chalicelib.services import notifications
from chalicelib.storage import orders, subscriptions, users
from chalicelib.storage.orders import Order
from local.wechat_sim import subscribe_rules
from tests.api.helpers import admin_token, call, log_in, sim_call, sim_fault

TEMPLATES = {"WECHAT_TEMPLATE_ORDER_PAID": "tmpl-paid", "WECHAT_TEMPLATE_ORDER_SHIPPED": "tmpl-shipped",
             "WECHAT_TEMPLATE_ORDER_REFUNDED": "tmpl-refunded", "WECHAT_TEMPLATE_GROUP_BUY_RESULT": "tmpl-group",
             "WECHAT_TEMPLATE_PAY_REMINDER": "tmpl-remind"}
NOW = datetime(2024, 5, 1, 4, 0, tzinfo=timezone.utc)  # 12:00 in Shanghai


@pytest.fixture
def templates(monkeypatch):
    for name, value in TEMPLATES.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def strict_sim(wechat_sim):
    """The simulator answering 43101 to a send the user never accepted, as WeChat does."""
    sim_call(wechat_sim, "POST", "/__sim/subscribe/enforce", {"enabled": True})
    return wechat_sim


@pytest.fixture
def user(client, templates):
    _, body = log_in(client)
    return users.get_user(body["user_id"])


def make_order(user_id: str, order_id: str = "o123456789012345678901234", names=("红富士苹果",), **fields) -> Order:
    lines = tuple(QuoteLine(sku_id=f"sku-{i}", product_id=f"p-{i}", name=name, specs={}, price_fen=1250,
                            quantity=2, subtotal_fen=2500, discount_fen=0, payable_fen=2500)
                  for i, name in enumerate(names))
    base = dict(order_id=order_id, user_id=user_id, out_trade_no=order_id, status="paid", request_fingerprint="f",
                created_at=NOW, pay_deadline=NOW + timedelta(minutes=15), delivery_method="express", lines=lines,
                adjustments=(), goods_fen=2500 * len(lines), discount_fen=0, delivery_fee_fen=0,
                payable_fen=2500 * len(lines), paid_at=NOW)
    return Order(**{**base, **fields})


def grant_both(simulator, user, template_id: str, times: int = 1) -> None:
    """The user accepted the template `times` times: our ledger and WeChat's both know it."""
    for _ in range(times):
        subscriptions.grant(user.user_id, template_id, NOW)
    sim_call(simulator, "POST", "/__sim/subscribe/accept",
             {"openid": user.openid, "template_id": template_id, "times": times})


def take_queued() -> list[SubscribeMessageJob]:
    sqs = queues._client()
    url = queues.queue_url(queues.NOTIFICATIONS.name)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return [SubscribeMessageJob.model_validate_json(message["Body"]) for message in messages]


def run_worker(client, jobs: list[SubscribeMessageJob]) -> None:
    """The notifications worker, as Lambda runs it for SQS (one record per invocation)."""
    for job in jobs:
        event = client.events.generate_sqs_event(message_bodies=[job.model_dump_json()],
                                                 queue_name=queues.NOTIFICATIONS.name)
        client.lambda_.invoke("deliver_notifications", event)


def received(simulator) -> list[dict]:
    return sim_call(simulator, "GET", "/__sim/messages")["items"]


def send_calls(simulator) -> int:
    return sim_call(simulator, "GET", "/__sim/stats")["calls"]["subscribe_send"]


# ------------------------------------------------------------------ queueing

def test_an_event_with_quota_is_queued_with_a_deterministic_key_and_the_templates_data(client, strict_sim, user):
    grant_both(strict_sim, user, "tmpl-paid")
    order = make_order(user.user_id)
    assert notifications.notify_order_event(order, "paid", NOW) == "queued"
    [job] = take_queued()
    assert job.message_key == f"paid#{order.order_id}" and job.template_id == "tmpl-paid"
    assert job.page == f"pages/order/detail?id={order.order_id}"
    assert job.data == {"character_string1": {"value": order.order_id}, "thing2": {"value": "红富士苹果"},
                        "amount3": {"value": "¥25.00"}, "time4": {"value": "2024年5月1日 12:00"}}


def test_an_event_without_quota_is_not_queued_and_wechat_receives_nothing(client, strict_sim, user):
    assert notifications.notify_order_event(make_order(user.user_id), "paid", NOW) == "no_quota"
    assert take_queued() == []
    assert send_calls(strict_sim) == 0


def test_an_event_kind_without_a_configured_template_sends_nothing(client, strict_sim, user, monkeypatch):
    monkeypatch.delenv("WECHAT_TEMPLATE_ORDER_SHIPPED")
    grant_both(strict_sim, user, "tmpl-shipped")
    assert notifications.notify_order_event(make_order(user.user_id), "shipped", NOW) == "no_template"
    assert take_queued() == []


def test_a_template_setting_that_is_not_a_template_id_counts_as_unset(client, user, monkeypatch):
    monkeypatch.setenv("WECHAT_TEMPLATE_ORDER_PAID", "not a template id!")
    assert notifications.notify_order_event(make_order(user.user_id), "paid", NOW) == "no_template"


def test_a_queue_failure_is_logged_and_never_raised_into_the_caller(client, strict_sim, user, monkeypatch):
    grant_both(strict_sim, user, "tmpl-paid")

    def broken(*args, **kwargs):
        raise RuntimeError("SQS is down")

    monkeypatch.setattr(queues, "send_message", broken)
    assert notifications.notify_order_event(make_order(user.user_id), "paid", NOW) == "failed"
    assert subscriptions.remaining(user.user_id, "tmpl-paid", consistent=True) == 1  # nothing spent


def test_two_refunds_of_one_order_are_two_messages_and_a_repeated_refund_event_is_one(client, strict_sim, user):
    grant_both(strict_sim, user, "tmpl-refunded", times=3)
    order = make_order(user.user_id)
    for ref in ("r-1", "r-2", "r-1"):  # r-1's notify reported twice
        assert notifications.notify_order_event(order, "refunded", NOW, ref=ref, amount_fen=500) == "queued"
    run_worker(client, take_queued())
    assert len(received(strict_sim)) == 2
    assert subscriptions.remaining(user.user_id, "tmpl-refunded", consistent=True) == 1


# ------------------------------------------------------------------ message data

@pytest.mark.parametrize("kind", ["paid", "shipped", "refunded", "group_buy_result", "pay_reminder"])
def test_every_kinds_data_fits_wechats_keyword_limits_even_for_long_names(kind):
    order = make_order("u1", names=("超级无敌巨大号新鲜美味红富士苹果礼盒装二十斤", "香蕉"),
                       shipment={"carrier": "顺丰速运国际快递有限公司上海分公司徐汇营业部", "tracking_no": "SF 1234-5678/中"},
                       shipped_at=NOW)
    data = notifications.message_data(order, kind, NOW, amount_fen=999, succeeded=True)
    assert subscribe_rules._validate_data(data) is None, data
    assert data["thing2"]["value"].endswith("等4件") and len(data["thing2"]["value"]) == 20


def test_shipped_refunded_and_group_buy_messages_say_what_happened():
    order = make_order("u1", shipment={"carrier": "顺丰速运", "tracking_no": "SF1234567890"}, shipped_at=NOW)
    shipped = notifications.message_data(order, "shipped", NOW)
    assert shipped["thing3"]["value"] == "顺丰速运" and shipped["character_string4"]["value"] == "SF1234567890"
    assert notifications.message_data(order, "refunded", NOW, amount_fen=1050)["amount3"]["value"] == "¥10.50"
    assert notifications.message_data(order, "group_buy_result", NOW, succeeded=False)["phrase3"]["value"] == "拼团失败"
    reminder = notifications.message_data(order, "pay_reminder", NOW)
    assert reminder["time4"]["value"] == "2024年5月1日 12:15"  # the pay deadline


# ------------------------------------------------------------------ delivery

def test_a_message_spends_one_unit_even_when_sqs_delivers_it_twice(client, strict_sim, user):
    grant_both(strict_sim, user, "tmpl-shipped", times=2)
    assert notifications.notify_order_event(make_order(user.user_id), "shipped", NOW) == "queued"
    [job] = take_queued()
    run_worker(client, [job, job])
    assert len(received(strict_sim)) == 1
    assert subscriptions.remaining(user.user_id, "tmpl-shipped", consistent=True) == 1
    assert sim_call(strict_sim, "GET", "/__sim/subscribe/quota")["items"][0]["remaining"] == 1


def test_quota_gone_by_delivery_time_skips_the_wechat_call(client, strict_sim, user):
    grant_both(strict_sim, user, "tmpl-paid")
    order = make_order(user.user_id)
    assert notifications.notify_order_event(order, "paid", NOW) == "queued"
    assert notifications.notify_order_event(order, "paid", NOW, ref="again") == "queued"  # both saw 1 unit
    first, second = take_queued()
    assert notifications.deliver_subscribe_message(first) == "sent"
    assert notifications.deliver_subscribe_message(second) == "no_quota"
    assert send_calls(strict_sim) == 1
    assert subscriptions.remaining(user.user_id, "tmpl-paid", consistent=True) == 0


def test_wechat_43101_consumes_nothing_and_is_not_tried_again(client, strict_sim, user):
    subscriptions.grant(user.user_id, "tmpl-paid", NOW)  # our ledger says 1; WeChat holds no acceptance
    job = SubscribeMessageJob(message_key="paid#o1", user_id=user.user_id, template_id="tmpl-paid",
                              data={"thing2": {"value": "苹果"}})
    assert notifications.deliver_subscribe_message(job) == "refused"
    assert subscriptions.remaining(user.user_id, "tmpl-paid", consistent=True) == 1
    assert notifications.deliver_subscribe_message(job) == "duplicate"
    assert send_calls(strict_sim) == 1
    log = sim_call(strict_sim, "GET", "/__sim/subscribe/log")["items"]
    assert [item["outcome"] for item in log] == ["refused"]


def test_a_refused_message_redelivered_after_a_crash_does_not_call_wechat_again(client, strict_sim, user):
    subscriptions.grant(user.user_id, "tmpl-paid", NOW)
    assert subscriptions.consume(user.user_id, "tmpl-paid", "paid#o2", NOW) is subscriptions.Consumption.CONSUMED
    assert subscriptions.give_back(user.user_id, "tmpl-paid", "paid#o2", NOW)  # then the worker died
    job = SubscribeMessageJob(message_key="paid#o2", user_id=user.user_id, template_id="tmpl-paid",
                              data={"thing2": {"value": "苹果"}})
    assert notifications.deliver_subscribe_message(job) == "refused"
    assert send_calls(strict_sim) == 0
    assert subscriptions.remaining(user.user_id, "tmpl-paid", consistent=True) == 1


def test_a_transient_failure_keeps_the_unit_and_the_retry_sends_without_spending_another(client, strict_sim, user):
    grant_both(strict_sim, user, "tmpl-paid", times=2)
    job = SubscribeMessageJob(message_key="paid#o3", user_id=user.user_id, template_id="tmpl-paid",
                              data={"thing2": {"value": "苹果"}})
    sim_fault(strict_sim, "subscribe_send", errcode=-1, errmsg="system error")
    with pytest.raises(UpstreamError):
        notifications.deliver_subscribe_message(job)
    assert subscriptions.remaining(user.user_id, "tmpl-paid", consistent=True) == 1  # held for this message
    assert notifications.deliver_subscribe_message(job) == "sent"
    assert subscriptions.remaining(user.user_id, "tmpl-paid", consistent=True) == 1
    assert len(received(strict_sim)) == 1


def test_a_message_for_an_unknown_user_spends_nothing(client, strict_sim, user):
    subscriptions.grant("u-nobody", "tmpl-paid", NOW)
    job = SubscribeMessageJob(message_key="paid#o4", user_id="u-nobody", template_id="tmpl-paid",
                              data={"thing2": {"value": "苹果"}})
    assert notifications.deliver_subscribe_message(job) == "unknown_user"
    assert subscriptions.remaining("u-nobody", "tmpl-paid", consistent=True) == 1


# ------------------------------------------------------------------ end to end, as the lead wires it

def test_paid_shipped_and_refunded_messages_arrive_at_the_simulator_with_quota_counted(
        client, strict_sim, demo_store, notify_bridge, templates):
    """The use cases queue them (payment notify, shipping, refund completion); the worker sends."""
    from tests.services.test_shipping_info import place_and_pay, ship

    token, body = log_in(client)
    user = users.get_user(body["user_id"])
    for template_id in ("tmpl-paid", "tmpl-shipped", "tmpl-refunded"):  # what wx.requestSubscribeMessage said
        status, answer, _ = _post_subscription(client, token, template_id)
        assert status == 200 and answer["remaining"] == 1, answer
        sim_call(strict_sim, "POST", "/__sim/subscribe/accept", {"openid": user.openid, "template_id": template_id})
    shipped = place_and_pay(client, strict_sim, token, "express")  # paid: its message queued by the notify
    assert ship(client, shipped["order_id"])[0] == 200
    refunded = place_and_pay(client, strict_sim, token, "pickup")  # queued too: quota is spent at delivery
    request = call(client, "POST", f"/v1/orders/{refunded['order_id']}/after-sales",
                   {"kind": "refund", "reason": "不想要了"}, token=token)[1]
    call(client, "POST", f"/v1/admin/after-sales/{request['request_id']}/approve", token=admin_token(client))
    deadline = time.monotonic() + 10
    while orders.get_order(refunded["order_id"]).status != "refunded" and time.monotonic() < deadline:
        time.sleep(0.05)
    jobs = take_queued()
    assert sorted(job.template_id for job in jobs) == ["tmpl-paid", "tmpl-paid", "tmpl-refunded", "tmpl-shipped"]
    run_worker(client, jobs + jobs)  # every message delivered twice; the second `paid` finds no quota left
    messages = received(strict_sim)
    assert sorted(m["template_id"] for m in messages) == ["tmpl-paid", "tmpl-refunded", "tmpl-shipped"]
    assert all(m["touser"] == user.openid for m in messages)
    listed = {item["template_id"]: item["remaining"]
              for item in _get_subscriptions(client, token)["items"]}
    assert listed == {"tmpl-paid": 0, "tmpl-shipped": 0, "tmpl-refunded": 0, "tmpl-group": 0, "tmpl-remind": 0}
    assert all(item["remaining"] == 0 for item in sim_call(strict_sim, "GET", "/__sim/subscribe/quota")["items"])
    # A further event finds no quota: nothing queued, nothing attempted.
    assert notifications.notify_order_event(orders.get_order(shipped["order_id"]), "refunded", clock.now(),
                                            ref="r-2") == "no_quota"
    assert send_calls(strict_sim) == 3


def _post_subscription(client, token, template_id):
    from tests.api.helpers import call

    return call(client, "POST", "/v1/me/subscriptions", {"template_id": template_id, "accepted": True}, token=token)


def _get_subscriptions(client, token) -> dict:
    from tests.api.helpers import call

    status, answer, _ = call(client, "GET", "/v1/me/subscriptions", token=token)
    assert status == 200, answer
    return answer


def test_queued_jobs_are_json_the_worker_reads(client, strict_sim, user):
    grant_both(strict_sim, user, "tmpl-remind")
    notifications.notify_order_event(make_order(user.user_id, status="pending_payment"), "pay_reminder", NOW)
    sqs = queues._client()
    [message] = sqs.receive_message(QueueUrl=queues.queue_url(queues.NOTIFICATIONS.name)).get("Messages", [])
    assert json.loads(message["Body"])["message_key"] == "pay_reminder#o123456789012345678901234"

