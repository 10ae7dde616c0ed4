"""Shipment anomalies: no pickup scan LOGISTICS_NO_PICKUP_HOURS after the waybill, or no movement
for LOGISTICS_STALL_DAYS after the last event, raise one merchant alert per shipment (fake clock)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.services import tracking, tracking_sweeps
from chalicelib.storage import alerts, waybills
from chalicelib.storage.base import ConditionFailed
from chalicelib.wechat.logistics import PathItem
from tests.api.helpers import call
from tests.api.logistics_helpers import logistics_store  # noqa: F401  (a fixture)
from tests.api.logistics_helpers import DELIVERED, IN_TRANSIT, PICKED_UP, create, paid_express_order


@pytest.fixture
def shipment(client, wechat_sim, logistics_store) -> waybills.Waybill:
    token, admin = logistics_store
    order = paid_express_order(client, wechat_sim, token)
    status, answer = create(client, admin, order["order_id"])
    assert status == 201, answer
    return waybills.get_waybill(order["order_id"])


def anomaly_alerts() -> list[alerts.Alert]:
    return alerts.list_alerts(tracking_sweeps.ALERT_KIND, 100, None)[0]


def scan(waybill: waybills.Waybill, action_type: int, at) -> None:
    tracking.merge_events(waybills.get_waybill(waybill.order_id),
                          [PathItem(int(at.timestamp()), action_type, f"scan {action_type}")], "poll")


def test_no_pickup_72_hours_after_the_waybill_alerts_once(shipment):
    made = shipment.waybill_at
    assert shipment.watch_at == made + timedelta(hours=72)
    with clock.frozen_at(made + timedelta(hours=71)):
        assert tracking_sweeps.sweep_anomalies() == {} and anomaly_alerts() == []
    with clock.frozen_at(made + timedelta(hours=72, minutes=15)) as advance:
        assert tracking_sweeps.sweep_anomalies() == {"no_pickup": 1}
        advance(timedelta(minutes=15))
        assert tracking_sweeps.sweep_anomalies() == {}  # off the index: never found again
        assert tracking_sweeps.check_anomaly(shipment.order_id) == "not_watched"
    [alert] = anomaly_alerts()
    assert alert.detail["kind"] == "no_pickup" and alert.detail["order_id"] == shipment.order_id
    assert alert.detail["waybill_id"] == shipment.waybill_id
    flagged = waybills.get_waybill(shipment.order_id)
    assert flagged.anomaly["kind"] == "no_pickup" and flagged.watch_at is None


def test_no_movement_for_three_days_after_pickup_alerts_once(shipment):
    start = shipment.waybill_at.replace(microsecond=0)  # scans carry whole seconds
    scan(shipment, PICKED_UP, start + timedelta(hours=5))
    scan(shipment, IN_TRANSIT, start + timedelta(days=1))
    moved = waybills.get_waybill(shipment.order_id)
    assert moved.watch_at == start + timedelta(days=4)  # the last movement + LOGISTICS_STALL_DAYS
    with clock.frozen_at(start + timedelta(days=3, hours=23)):
        assert tracking_sweeps.sweep_anomalies() == {}
    with clock.frozen_at(start + timedelta(days=4, minutes=1)):
        assert tracking_sweeps.sweep_anomalies() == {"stalled": 1}
        scan(shipment, IN_TRANSIT, start + timedelta(days=4))  # moving again: no second alert, no watch
        assert waybills.get_waybill(shipment.order_id).watch_at is None
    with clock.frozen_at(start + timedelta(days=30)):
        assert tracking_sweeps.sweep_anomalies() == {}
    [alert] = anomaly_alerts()
    assert alert.detail["kind"] == "stalled"


def test_the_stall_days_are_a_setting(shipment, monkeypatch):
    monkeypatch.setenv("LOGISTICS_STALL_DAYS", "1")
    start = shipment.waybill_at.replace(microsecond=0)
    scan(shipment, PICKED_UP, start + timedelta(hours=1))
    assert waybills.get_waybill(shipment.order_id).watch_at == start + timedelta(days=1, hours=1)


def test_a_delivered_shipment_is_never_alerted(shipment):
    scan(shipment, PICKED_UP, shipment.waybill_at + timedelta(hours=1))
    scan(shipment, DELIVERED, shipment.waybill_at + timedelta(days=1))
    with clock.frozen_at(shipment.waybill_at + timedelta(days=60)):
        assert tracking_sweeps.sweep_anomalies() == {}
    assert anomaly_alerts() == []


def test_a_cancelled_waybill_is_never_alerted(shipment, client, logistics_store):
    _, admin = logistics_store
    status, _, _ = call(client, "POST", f"/v1/admin/orders/{shipment.order_id}/waybill/cancel", token=admin)
    assert status == 200
    with clock.frozen_at(shipment.waybill_at + timedelta(days=60)):
        assert tracking_sweeps.sweep_anomalies() == {} and tracking_sweeps.sweep_polls() == {}
    assert anomaly_alerts() == []


def test_a_sweep_that_read_a_deadline_since_moved_flags_nothing(shipment):
    due = shipment.watch_at
    stale = waybills.get_waybill(shipment.order_id)
    scan(shipment, PICKED_UP, shipment.waybill_at + timedelta(hours=70))  # moves the deadline
    with pytest.raises(ConditionFailed):
        waybills.flag_anomaly(stale, {"kind": "no_pickup"}, due)
    first = waybills.get_waybill(shipment.order_id)
    waybills.flag_anomaly(first, {"kind": "stalled"}, first.watch_at)
    with pytest.raises(ConditionFailed):  # a second sweep holding the same read loses
        waybills.flag_anomaly(first, {"kind": "stalled"}, first.watch_at)
    assert waybills.get_waybill(shipment.order_id).anomaly == {"kind": "stalled"}


def test_an_event_merged_after_the_flag_does_not_watch_the_shipment_again(shipment):
    with clock.frozen_at(shipment.watch_at + timedelta(minutes=1)):
        assert tracking_sweeps.check_anomaly(shipment.order_id) == "no_pickup"
    scan(shipment, PICKED_UP, shipment.watch_at + timedelta(minutes=2))
    after = waybills.get_waybill(shipment.order_id)
    assert after.picked_up_at is not None and after.watch_at is None and after.poll_at is not None
    assert len(anomaly_alerts()) == 1


def test_the_scheduled_sweeps_run_as_lambdas(shipment, client):
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                            resources=[], region="us-east-1")
    with clock.frozen_at(shipment.watch_at + timedelta(minutes=1)):
        client.lambda_.invoke("poll_waybill_paths", event)
        client.lambda_.invoke("sweep_shipment_anomalies", event)
    assert [alert.detail["kind"] for alert in anomaly_alerts()] == ["no_pickup"]
    assert waybills.get_waybill(shipment.order_id).last_poll_at is not None
