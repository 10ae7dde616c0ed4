"""POST/GET /v1/me/subscriptions: what wx.requestSubscribeMessage returned becomes one-time quota."""
from __future__ import annotations

import pytest

from chalicelib.storage.subscriptions import MAX_REMAINING, SubscriptionRecord
from tests.api.helpers import assert_envelope, call, log_in

PAID, SHIPPED = "tmpl-paid_0123456789abcdefghijABCDEFGHIJ-xyz", "tmpl-shipped"


@pytest.fixture
def shopper(client, monkeypatch):
    monkeypatch.setenv("WECHAT_TEMPLATE_ORDER_PAID", PAID)
    monkeypatch.setenv("WECHAT_TEMPLATE_ORDER_SHIPPED", SHIPPED)
    monkeypatch.setenv("WECHAT_TEMPLATE_ORDER_REFUNDED", SHIPPED)  # one template may serve two events
    token, _ = log_in(client)
    return token


def post(client, token, body):
    return call(client, "POST", "/v1/me/subscriptions", body, token=token)


def items_written() -> int:
    return sum(1 for _ in SubscriptionRecord.scan())


def test_the_list_names_every_configured_template_with_no_quota_yet(client, shopper):
    status, body, _ = call(client, "GET", "/v1/me/subscriptions", token=shopper)
    assert status == 200
    assert body == {"items": [{"template_id": PAID, "kinds": ["paid"], "remaining": 0},
                              {"template_id": SHIPPED, "kinds": ["shipped", "refunded"], "remaining": 0}]}


def test_each_acceptance_adds_one_send_of_that_template(client, shopper):
    assert post(client, shopper, {"template_id": PAID, "accepted": True})[1]["remaining"] == 1
    status, body, _ = post(client, shopper, {"template_id": PAID, "accepted": True})
    assert status == 200 and body == {"template_id": PAID, "kinds": ["paid"], "remaining": 2}
    listed = call(client, "GET", "/v1/me/subscriptions", token=shopper)[1]["items"]
    assert [item["remaining"] for item in listed] == [2, 0]


def test_a_retried_call_with_the_same_request_id_counts_once(client, shopper):
    body = {"template_id": SHIPPED, "accepted": True, "request_id": "req-00000001"}
    assert post(client, shopper, body)[1]["remaining"] == 1
    assert post(client, shopper, body)[1]["remaining"] == 1
    assert post(client, shopper, {**body, "request_id": "req-00000002"})[1]["remaining"] == 2


def test_a_refusal_records_nothing_and_answers_the_current_quota(client, shopper):
    post(client, shopper, {"template_id": PAID, "accepted": True})
    written = items_written()
    status, body, _ = post(client, shopper, {"template_id": PAID, "accepted": False})
    assert status == 200 and body["remaining"] == 1
    assert items_written() == written


def test_quota_is_per_user(client, shopper):
    post(client, shopper, {"template_id": PAID, "accepted": True})
    other, _ = log_in(client, "bob-1")
    assert post(client, other, {"template_id": PAID, "accepted": False})[1]["remaining"] == 0


def test_the_ledger_stops_growing_at_its_cap(client, shopper):
    SubscriptionRecord(_user_id(client, shopper), "tmpl#" + PAID, template_id=PAID, remaining=MAX_REMAINING).save()
    assert post(client, shopper, {"template_id": PAID, "accepted": True})[1]["remaining"] == MAX_REMAINING
    body = {"template_id": PAID, "accepted": True, "request_id": "req-at-the-cap"}
    assert post(client, shopper, body)[1]["remaining"] == MAX_REMAINING


def _user_id(client, token) -> str:
    status, me, _ = call(client, "GET", "/v1/me", token=token)
    assert status == 200, me
    return me["user_id"]


def test_a_template_the_store_does_not_use_is_refused_and_nothing_written(client, shopper):
    status, body, _ = post(client, shopper, {"template_id": "someone-elses-template", "accepted": True})
    assert status == 400
    assert_envelope(body, "unknown_template")
    assert items_written() == 0


@pytest.mark.parametrize("body", [
    {"accepted": True},
    {"template_id": PAID},
    {"template_id": PAID, "accepted": "true"},
    {"template_id": PAID, "accepted": 1},
    {"template_id": "", "accepted": True},
    {"template_id": "tmpl paid", "accepted": True},
    {"template_id": "模板", "accepted": True},
    {"template_id": "x" * 65, "accepted": True},
    {"template_id": 42, "accepted": True},
    {"template_id": PAID, "accepted": True, "request_id": "short"},
    {"template_id": PAID, "accepted": True, "request_id": "has spaces in it"},
    {"template_id": PAID, "accepted": True, "extra": 1},
    [],
    "text",
])
def test_bad_input_is_400_and_writes_nothing(client, shopper, body):
    status, answer, _ = post(client, shopper, body)
    assert status == 400, answer
    assert_envelope(answer)
    assert items_written() == 0


def test_a_body_that_is_not_json_is_400_and_writes_nothing(client, shopper):
    status, answer, _ = call(client, "POST", "/v1/me/subscriptions", raw=b"{not json", token=shopper)
    assert status == 400
    assert_envelope(answer)
    assert items_written() == 0


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_routes_need_a_logged_in_user(client, shopper, method):
    status, answer, _ = call(client, method, "/v1/me/subscriptions", {"template_id": PAID, "accepted": True})
    assert status == 401
    assert_envelope(answer)
    assert items_written() == 0


def test_with_no_template_configured_the_list_is_empty_and_every_template_unknown(client, monkeypatch):
    token, _ = log_in(client)
    assert call(client, "GET", "/v1/me/subscriptions", token=token)[1] == {"items": []}
    assert post(client, token, {"template_id": PAID, "accepted": True})[1]["Code"] == "unknown_template"
