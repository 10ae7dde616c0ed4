"""POST /v1/events (validated, rate-limited, idempotent), the reports' dates and CSV, and the
alert rules, over the app on moto."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import clock
from chalicelib.services import analytics
from chalicelib.storage.events import EventRecord
from tests.api.helpers import admin_token, assert_envelope, call, log_in
from tests.services.analytics_records import evolve, order_change
from tests.storage.order_fixtures import make_order

NOW = datetime(2024, 5, 1, 4, 0, tzinfo=timezone.utc)


@pytest.fixture
def alice(client):
    with clock.frozen_at(NOW):
        yield log_in(client, "alice-1")


def _event(n: int, kind: str = "page_view", **extra) -> dict:
    return {"event_id": f"evt-{n:06d}", "type": kind, "at": "2024-05-01T11:59:00+08:00", **extra}


def _stored(user_id: str) -> list[EventRecord]:
    return list(EventRecord.query(user_id, consistent_read=True))


def test_a_batch_is_stored_once_and_a_resent_batch_stores_nothing_new(client, alice):
    token, user = alice
    batch = {"events": [_event(1, scene=1007), _event(2, "product_view", product_id="p1", source="poster"),
                        _event(3, "add_to_cart", product_id="p1", sku_id="s1", quantity=2), _event(4, "share")]}
    with clock.frozen_at(NOW):
        status, body, _ = call(client, "POST", "/v1/events", batch, token=token)
        assert (status, body) == (200, {"received": 4, "stored": 4, "duplicates": 0})
        batch["events"].append(_event(5))
        status, body, _ = call(client, "POST", "/v1/events", batch, token=token)
    assert (status, body) == (200, {"received": 5, "stored": 1, "duplicates": 4})
    stored = {record.event_id: record for record in _stored(user["user_id"])}
    assert len(stored) == 5
    assert (stored["evt-000001"].source, stored["evt-000002"].source) == ("scene_1007", "poster")
    assert stored["evt-000003"].quantity == 2 and stored["evt-000001"].expires_at > NOW + timedelta(days=89)


def test_an_invalid_event_refuses_the_whole_batch_and_stores_nothing(client, alice):
    token, user = alice
    bad_batches = [
        {"events": [_event(1), _event(2, "product_view")]},  # product_view needs product_id
        {"events": [_event(1), _event(1)]},  # the same id twice
        {"events": [_event(1, "purchase")]},
        {"events": [_event(n) for n in range(101)]},
        {"events": [{**_event(1), "at": "2024-05-01T11:59:00"}]},  # no offset
        {"events": [_event(1, scene=99)]},
        {"events": []},
    ]
    with clock.frozen_at(NOW):
        for batch in bad_batches:
            status, body, _ = call(client, "POST", "/v1/events", batch, token=token)
            assert status == 400, (batch, body)
            assert_envelope(body, "validation_error")
    assert _stored(user["user_id"]) == []
    status, _, _ = call(client, "POST", "/v1/events", {"events": [_event(1)]})
    assert status == 401


def test_more_than_a_burst_of_batches_is_429_with_retry_after(client, alice):
    token, _ = alice
    with clock.frozen_at(NOW):
        statuses = [call(client, "POST", "/v1/events", {"events": [_event(n)]}, token=token) for n in range(11)]
    assert [status for status, _, _ in statuses] == [200] * 10 + [429]
    status, body, headers = statuses[-1]
    assert_envelope(body, "events_rate_limited")
    assert headers["Retry-After"] == "1"
    with clock.frozen_at(NOW + timedelta(seconds=2)):
        assert call(client, "POST", "/v1/events", {"events": [_event(99)]}, token=token)[0] == 200


# --- reports ------------------------------------------------------------------------------------

def _report(client, token, name, **params):
    from urllib.parse import urlencode

    return call(client, "GET", f"/v1/admin/reports/{name}?{urlencode(params)}", token=token)


def test_reports_refuse_bad_ranges_and_a_user_token(client, alice):
    admin = admin_token(client)
    for params in ({"from": "2024-05-02", "to": "2024-05-01"}, {"from": "2024-01-01", "to": "2024-04-02"},
                   {"from": "2024-05-01"}, {"from": "yesterday", "to": "2024-05-01"},
                   {"from": "2024-05-01", "to": "2024-05-01", "format": "xml"},
                   {"from": "2024-05-01", "to": "2024-05-01", "extra": "1"}):
        status, body, _ = _report(client, admin, "sales", **params)
        assert status == 400, (params, body)
        assert_envelope(body, "validation_error")
    assert _report(client, admin, "sales", **{"from": "2024-01-01", "to": "2024-04-01"})[0] == 200  # 92 days
    assert _report(client, alice[0], "sales", **{"from": "2024-05-01", "to": "2024-05-01"})[0] == 403


def test_the_sales_report_and_its_csv(client, alice):
    admin = admin_token(client)
    with clock.frozen_at(NOW):
        placed = make_order("o1", {"s1": 2})
        paid = evolve(placed, status="paid", paid_at=NOW)
        analytics.consume([order_change(None, placed), order_change(placed, paid)])
    status, body, _ = _report(client, admin, "sales", **{"from": "2024-04-30", "to": "2024-05-01"})
    assert status == 200
    assert body["items"] == [
        {"date": "2024-04-30", "orders": 0, "paid_orders": 0, "gmv_fen": 0, "refund_fen": 0, "aov_fen": 0},
        {"date": "2024-05-01", "orders": 1, "paid_orders": 1, "gmv_fen": 2000, "refund_fen": 0, "aov_fen": 2000}]
    response = client.http.get("/v1/admin/reports/sales?from=2024-04-30&to=2024-05-01&format=csv",
                               headers={"Authorization": f"Bearer {admin}"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="sales-2024-04-30-2024-05-01.csv"' in response.headers["Content-Disposition"]
    text = response.body.decode("utf-8") if isinstance(response.body, bytes) else response.body
    assert text.lstrip("\ufeff").splitlines() == ["date,orders,paid_orders,gmv_fen,refund_fen,aov_fen",
                                                  "2024-04-30,0,0,0,0,0", "2024-05-01,1,1,2000,0,2000"]


def test_every_report_answers_json_and_csv_on_an_empty_store(client):
    admin = admin_token(client)
    for name in ("sales", "funnel", "products", "repurchase", "rfm"):
        status, body, _ = _report(client, admin, name, **{"from": "2024-05-01", "to": "2024-05-07"})
        assert status == 200, (name, body)
        response = client.http.get(f"/v1/admin/reports/{name}?from=2024-05-01&to=2024-05-07&format=csv",
                                   headers={"Authorization": f"Bearer {admin}"})
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    status, body, _ = _report(client, admin, "rfm", **{"from": "2024-05-01", "to": "2024-05-07"})
    assert body["computed_on"] is None and {row["customers"] for row in body["items"]} == {0}


def test_the_openapi_document_describes_the_new_routes(client):
    status, document, _ = call(client, "GET", "/openapi.json")
    sales = document["paths"]["/v1/admin/reports/sales"]["get"]
    assert set(sales["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert {p["name"] for p in sales["parameters"]} == {"from", "to", "format"}
    assert "post" in document["paths"]["/v1/events"]
    assert set(document["paths"]["/v1/admin/alert-rules"]) >= {"get", "patch"}


# --- alert rules ----------------------------------------------------------------------------------

def test_alert_rules_are_read_changed_with_a_version_and_validated(client, alice):
    admin = admin_token(client)
    status, body, _ = call(client, "GET", "/v1/admin/alert-rules", token=admin)
    assert status == 200 and body["version"] == 0
    assert {rule["rule"]: rule["threshold"] for rule in body["rules"]}["cancel_rate"] == 80
    status, body, _ = call(client, "PATCH", "/v1/admin/alert-rules",
                           {"rules": [{"rule": "cancel_rate", "threshold": 50, "min_samples": 5}], "version": 0},
                           token=admin)
    assert status == 200 and body["version"] == 1
    cancel = next(rule for rule in body["rules"] if rule["rule"] == "cancel_rate")
    assert cancel == {"rule": "cancel_rate", "enabled": True, "threshold": 50, "min_samples": 5, "window": "day"}
    stale = call(client, "PATCH", "/v1/admin/alert-rules",
                 {"rules": [{"rule": "cancel_rate", "enabled": False}], "version": 0}, token=admin)
    assert stale[0] == 409 and stale[1]["Code"] == "version_conflict"
    for bad in ({"rules": [{"rule": "cancel_rate", "threshold": 2000}]}, {"rules": [{"rule": "nope"}]},
                {"rules": []}, {"rules": [{"rule": "cancel_rate", "threshold": "5"}]}):
        status, body, _ = call(client, "PATCH", "/v1/admin/alert-rules", bad, token=admin)
        assert status == 400, (bad, body)
    assert call(client, "GET", "/v1/admin/alert-rules", token=admin)[1]["version"] == 1
    assert call(client, "GET", "/v1/admin/alert-rules", token=alice[0])[0] == 403


def test_an_unknown_report_name_is_404_and_the_named_ones_keep_their_routes(client):
    admin = admin_token(client)
    status, body, _ = call(client, "GET", "/v1/admin/reports/profit?from=2024-05-01&to=2024-05-01", token=admin)
    assert status == 404
    assert_envelope(body, "report_not_found")
    assert _report(client, admin, "funnel", **{"from": "2024-05-01", "to": "2024-05-01"})[0] == 200
