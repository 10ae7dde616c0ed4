"""The subscribe-message quota under real concurrency, on AWS's DynamoDB Local engine: racing
deliveries never spend more units than were granted, a unit is spent once per message, and the
(quota-checking) simulator receives exactly what the ledger allowed."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from chalicelib.schemas.messages import SubscribeMessageJob
from chalicelib.services import auth, notifications
from chalicelib.storage import subscriptions, users
from tests.api.helpers import sim_call
from tests.integration.concurrency import race

pytestmark = pytest.mark.dynamodb_local

NOW = datetime(2024, 5, 1, 4, 0, tzinfo=timezone.utc)
TEMPLATE = "tmpl-shipped"


@pytest.fixture
def user(dynamodb_local, wechat_sim):
    sim_call(wechat_sim, "POST", "/__sim/subscribe/enforce", {"enabled": True})
    return users.get_user(auth.log_in_with_wechat("quota-1").user.user_id, consistent=True)


def grant_both(simulator, user, times: int) -> None:
    for _ in range(times):
        subscriptions.grant(user.user_id, TEMPLATE, NOW)
    sim_call(simulator, "POST", "/__sim/subscribe/accept", {"openid": user.openid, "template_id": TEMPLATE,
                                                            "times": times})


def job(user, key: str) -> SubscribeMessageJob:
    return SubscribeMessageJob(message_key=key, user_id=user.user_id, template_id=TEMPLATE,
                               data={"thing2": {"value": "红富士苹果"}})


def received(simulator) -> list[dict]:
    return sim_call(simulator, "GET", "/__sim/messages")["items"]


def test_two_deliveries_racing_for_one_unit_send_one_message(user, wechat_sim):
    grant_both(wechat_sim, user, 1)
    results = race(2, lambda n: notifications.deliver_subscribe_message(job(user, f"shipped#o{n}")))
    assert sorted(results) == ["no_quota", "sent"]
    assert len(received(wechat_sim)) == 1
    assert subscriptions.remaining(user.user_id, TEMPLATE, consistent=True) == 0


def test_ten_deliveries_racing_for_three_units_send_three_and_never_go_negative(user, wechat_sim):
    grant_both(wechat_sim, user, 3)
    results = race(10, lambda n: notifications.deliver_subscribe_message(job(user, f"shipped#o{n}")))
    assert sorted(results) == ["no_quota"] * 7 + ["sent"] * 3
    assert len(received(wechat_sim)) == 3
    assert subscriptions.remaining(user.user_id, TEMPLATE, consistent=True) == 0


def test_one_message_redelivered_to_eight_workers_at_once_is_sent_once_for_one_unit(user, wechat_sim):
    grant_both(wechat_sim, user, 2)
    results = race(8, lambda n: notifications.deliver_subscribe_message(job(user, "shipped#o1")))
    # One worker sends; the others find it done, or in progress (they raise, and SQS redelivers later).
    assert results.count("sent") == 1 and set(results) <= {"sent", "duplicate", "in_progress"}
    assert notifications.deliver_subscribe_message(job(user, "shipped#o1")) == "duplicate"
    assert len(received(wechat_sim)) == 1
    assert subscriptions.remaining(user.user_id, TEMPLATE, consistent=True) == 1


def test_racing_consumptions_of_one_message_key_take_one_unit(user):
    for _ in range(3):
        subscriptions.grant(user.user_id, TEMPLATE, NOW)
    results = race(10, lambda n: subscriptions.consume(user.user_id, TEMPLATE, "shipped#o1", NOW))
    assert results.count(subscriptions.Consumption.CONSUMED) == 1
    assert set(results) == {subscriptions.Consumption.CONSUMED, subscriptions.Consumption.HELD}
    assert subscriptions.remaining(user.user_id, TEMPLATE, consistent=True) == 2


def test_racing_give_backs_return_the_unit_once(user):
    subscriptions.grant(user.user_id, TEMPLATE, NOW)
    subscriptions.consume(user.user_id, TEMPLATE, "shipped#o1", NOW)
    results = race(10, lambda n: subscriptions.give_back(user.user_id, TEMPLATE, "shipped#o1", NOW))
    assert results.count(True) == 1
    assert subscriptions.remaining(user.user_id, TEMPLATE, consistent=True) == 1


def test_racing_grants_with_one_request_id_count_once_and_without_one_count_each(user):
    race(10, lambda n: subscriptions.grant(user.user_id, TEMPLATE, NOW, request_id="req-same-0001"))
    assert subscriptions.remaining(user.user_id, TEMPLATE, consistent=True) == 1
    race(10, lambda n: subscriptions.grant(user.user_id, TEMPLATE, NOW))
    assert subscriptions.remaining(user.user_id, TEMPLATE, consistent=True) == 11
