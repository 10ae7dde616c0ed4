"""After-sales SLA clocks (issue 17): the merchant answers a request within
AFTER_SALES_RESPOND_HOURS and receives (or rejects) goods sent back within RETURN_REVIEW_HOURS;
a clock that runs out is escalated once (an alert; a small refund-only request approved)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.services import after_sales as service
from chalicelib.storage import after_sales, alerts
from tests.api.test_after_sales import _admin, _ask, _paid_express_order, _send_back, _shipped_return, shop  # noqa: F401

LATER = timedelta(hours=49)


def _late_alerts(kind: str = service.RESPOND_LATE) -> list:
    return alerts.list_alerts(kind, 50, None)[0]


def _sweep_at(moment) -> dict:
    with clock.frozen_at(moment):
        return service.sweep_sla_clocks()


def test_an_unanswered_request_is_escalated_once_with_one_alert(client, shop):
    order = _paid_express_order(client, shop)
    request = _ask(client, shop["user"], order["order_id"])[1]
    assert after_sales.get_request(request["request_id"]).deadline[0] == after_sales.RESPOND
    assert _sweep_at(clock.now() + timedelta(hours=47)) == {}  # not due yet
    assert _sweep_at(clock.now() + LATER) == {"escalated": 1}
    assert _sweep_at(clock.now() + LATER + timedelta(minutes=5)) == {}
    stored = after_sales.get_request(request["request_id"])
    assert stored.deadline is None and stored.escalations == ("respond",) and stored.status == "requested"
    [alert] = _late_alerts()
    assert alert.detail["request_id"] == request["request_id"]


def test_a_small_late_refund_is_approved_for_the_merchant_and_a_large_one_only_alerted(client, shop, monkeypatch):
    monkeypatch.setenv("AUTO_APPROVE_REFUND_MAX_FEN", "5000")
    from tests.conftest import reset_process_caches

    reset_process_caches()
    small = _ask(client, shop["user"], _paid_express_order(client, shop, quantity=1)["order_id"])[1]  # 47.90 yuan
    large = _ask(client, shop["user"], _paid_express_order(client, shop, quantity=2)["order_id"])[1]  # 87.80 yuan
    assert small["amount_fen"] <= 5000 < large["amount_fen"]
    assert _sweep_at(clock.now() + LATER) == {"auto_approved": 1, "escalated": 1}
    assert after_sales.get_request(small["request_id"]).status in ("refunding", "refunded")
    assert after_sales.get_request(large["request_id"]).status == "requested"
    assert len(_late_alerts()) == 2


def test_answering_in_time_stops_the_clock(client, shop):
    order = _paid_express_order(client, shop)
    request = _ask(client, shop["user"], order["order_id"])[1]
    _admin(client, shop, request["request_id"], "reject", {"reason": "已发货"})
    assert after_sales.get_request(request["request_id"]).deadline is None
    assert _sweep_at(clock.now() + LATER) == {}
    assert _late_alerts() == []


def test_goods_sent_back_start_the_review_clock_and_receiving_them_stops_it(client, shop):
    _, late = _shipped_return(client, shop)
    _, on_time = _shipped_return(client, shop)
    for request in (late, on_time):
        _admin(client, shop, request["request_id"], "approve")
        assert after_sales.get_request(request["request_id"]).deadline is None  # the buyer's turn: no clock
        _send_back(client, shop, request)
        assert after_sales.get_request(request["request_id"]).deadline[0] == after_sales.REVIEW
    _admin(client, shop, on_time["request_id"], "receive")
    assert _sweep_at(clock.now() + timedelta(hours=73)) == {"escalated": 1}
    [alert] = _late_alerts(service.REVIEW_LATE)
    assert alert.detail["request_id"] == late["request_id"]
    assert after_sales.get_request(late["request_id"]).escalations == ("review",)


def test_a_stale_read_of_a_clock_escalates_nothing_twice(client, shop):
    order = _paid_express_order(client, shop)
    request = after_sales.get_request(_ask(client, shop["user"], order["order_id"])[1]["request_id"])
    with clock.frozen_at(clock.now() + LATER):
        assert after_sales.escalate(request, after_sales.RESPOND, clock.now())
        assert not after_sales.escalate(request, after_sales.RESPOND, clock.now())  # the same read again
        assert service._escalate_if_due(request.request_id, after_sales.RESPOND, clock.now()) == "not_due"


@pytest.mark.parametrize("hours", ["0", "-3", "soon"])
def test_bad_sla_settings_are_refused_at_start(monkeypatch, hours):
    from chalicelib.settings import SettingsError, load_settings

    monkeypatch.setenv("AFTER_SALES_RESPOND_HOURS", hours)
    with pytest.raises(SettingsError):
        load_settings()
