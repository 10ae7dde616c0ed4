"""The waybill and tracking writes under real threads on AWS's DynamoDB Local: one pending marker
per order, each event stored once, one anomaly flag per shipment, one poll claim."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.storage import tracking_events, waybills
from chalicelib.storage.base import ConditionFailed
from tests.integration.concurrency import race

pytestmark = pytest.mark.dynamodb_local

FIELDS = {"delivery_id": "SF", "delivery_name": "顺丰速运", "biz_id": "SF_CASH", "service_type": 0,
          "service_name": "标准快递", "fingerprint": "f1", "openid": "oBuyer"}


def _outcome(action) -> str:
    try:
        action()
    except ConditionFailed:
        return "lost"
    return "won"


def _created(order_id: str = "o-1") -> waybills.Waybill:
    now = clock.now()
    pending = waybills.start(order_id, previous=None, now=now, **FIELDS)
    return waybills.mark_created(pending, "SF007000000001", {"SF_mark": "101"}, now,
                                 watch_at=now + timedelta(hours=72), poll_at=now + timedelta(hours=6))


def test_one_pending_marker_per_order(dynamodb_local):
    outcomes = race(8, lambda n: _outcome(lambda: waybills.start("o-1", previous=None, now=clock.now(), **FIELDS)))
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    failed = waybills.mark_failed(waybills.get_waybill("o-1"), 9300501, "refused", clock.now())
    outcomes = race(8, lambda n: _outcome(lambda: waybills.start("o-1", previous=failed, now=clock.now(), **FIELDS)))
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    assert waybills.get_waybill("o-1").wx_order_id == "o-1.2"


def test_each_event_is_stored_once(dynamodb_local):
    when = clock.now().replace(microsecond=0)
    stored = race(8, lambda n: tracking_events.put_event("o-1", "SF1", when, 100001, "揽件", "push", clock.now()))
    assert sum(event is not None for event in stored) == 1
    assert len(tracking_events.list_events("o-1", "SF1")) == 1


def test_one_anomaly_flag_and_one_poll_claim_per_shipment(dynamodb_local):
    read = _created()
    outcomes = race(8, lambda n: _outcome(lambda: waybills.claim_poll(read, clock.now() + timedelta(hours=6))))
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    read = waybills.get_waybill("o-1")
    outcomes = race(8, lambda n: _outcome(lambda: waybills.flag_anomaly(read, {"kind": "no_pickup"}, clock.now())))
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    flagged = waybills.get_waybill("o-1")
    assert flagged.anomaly == {"kind": "no_pickup"} and flagged.watch_at is None
    assert waybills.due_to_watch(clock.now() + timedelta(days=30), 10) == []
