"""Merchant stock adjustments, POS/warehouse syncs, and low-stock alerts (one per crossing)."""
from __future__ import annotations

import uuid

import pytest

from chalicelib.storage.stock import StockMovementRecord
from tests.api.helpers import admin_token, assert_envelope, call, log_in, run_order_queue
from tests.storage.order_fixtures import counters


@pytest.fixture
def admin(client, demo_store):
    return admin_token(client)


def _adjust(client, admin, sku_id, **body):
    return call(client, "PATCH", f"/v1/admin/skus/{sku_id}/stock", body, token=admin)


def test_a_delta_moves_available_and_stock_in_and_is_recorded(client, admin):
    status, sku, _ = _adjust(client, admin, "sku-fuji-5", delta=50, reason="restock")
    assert status == 200 and sku["available"] == 250 and sku["stock_in"] == 250
    movement = next(StockMovementRecord.query("sku-fuji-5"))
    assert (movement.delta, movement.reason, movement.source) == (50, "restock", "admin")


def test_an_absolute_count_sets_available_and_moves_stock_in_by_the_difference(client, admin):
    user, _ = log_in(client)
    call(client, "POST", "/v1/orders", {"items": [{"sku_id": "sku-durian-3kg", "quantity": 2}], "delivery_method": "pickup",
                                        "store_id": "store-xuhui", "checkout_token": uuid.uuid4().hex}, token=user)
    status, sku, _ = _adjust(client, admin, "sku-durian-3kg", absolute=5, reason="count")
    assert status == 200
    assert counters("sku-durian-3kg") == {"available": 5, "allocated": 0, "reserved": 2, "sold": 0, "stock_in": 7}


@pytest.mark.parametrize("body", [{"reason": "x"}, {"delta": 1, "absolute": 1, "reason": "x"}, {"delta": 0, "reason": "x"},
                                  {"absolute": -1, "reason": "x"}, {"delta": 1}, {"delta": 1.5, "reason": "x"}])
def test_bad_adjustments_are_400_and_change_nothing(client, admin, body):
    status, error, _ = call(client, "PATCH", "/v1/admin/skus/sku-fuji-5/stock", body, token=admin)
    assert status == 400
    assert_envelope(error, "validation_error")
    assert counters("sku-fuji-5")["available"] == 200


def test_removing_more_than_available_is_409_and_unknown_skus_404(client, admin):
    status, error, _ = _adjust(client, admin, "sku-cherry-2kg", delta=-5, reason="damage")
    assert status == 409
    assert_envelope(error, "insufficient_stock")
    assert error["Details"][0]["available"] == 4
    assert _adjust(client, admin, "sku-nope", delta=1, reason="x")[0] == 404


def test_a_repeated_sync_applies_nothing_twice(client, admin):
    body = {"sync_id": "pos-2026-12-02-001", "source": "pos-xuhui",
            "items": [{"sku_id": "sku-fuji-5", "absolute": 150}, {"sku_id": "sku-navel-5", "delta": -10},
                      {"sku_id": "sku-ghost", "delta": 1}]}
    first = call(client, "POST", "/v1/admin/stock-sync", body, token=admin)[1]
    assert [item["status"] for item in first["items"]] == ["applied", "applied", "sku_not_found"]
    again = call(client, "POST", "/v1/admin/stock-sync", body, token=admin)[1]
    assert [item["status"] for item in again["items"]] == ["already_applied", "already_applied", "sku_not_found"]
    assert counters("sku-fuji-5")["available"] == 150 and counters("sku-navel-5")["available"] == 290


def test_low_stock_alerts_once_per_crossing(client, admin):
    # sku-durian-3kg: 20 units, threshold 5
    _adjust(client, admin, "sku-durian-3kg", absolute=5, reason="count")   # crosses: alert 1
    _adjust(client, admin, "sku-durian-3kg", delta=-1, reason="damage")    # still low: no alert
    _adjust(client, admin, "sku-durian-3kg", delta=10, reason="restock")   # back above: re-armed
    user, _ = log_in(client)
    status, _, _ = call(client, "POST", "/v1/orders", {"items": [{"sku_id": "sku-durian-3kg", "quantity": 10}],
                                                       "delivery_method": "pickup", "store_id": "store-xuhui",
                                                       "checkout_token": uuid.uuid4().hex}, token=user)
    assert status == 201  # 14 -> 4 available: alert 2, by the check the order queued
    assert run_order_queue(client) == 1
    alerts = call(client, "GET", "/v1/admin/alerts?kind=low_stock", token=admin)[1]["items"]
    assert [(a["sku_id"], a["available"]) for a in alerts] == [("sku-durian-3kg", 4), ("sku-durian-3kg", 5)]
    assert alerts[0]["threshold"] == 5


def test_stock_routes_are_for_admins_only(client, admin):
    user, _ = log_in(client)
    assert _adjust(client, user, "sku-fuji-5", delta=1, reason="x")[0] == 403
    assert call(client, "GET", "/v1/admin/alerts", token=user)[0] == 403
