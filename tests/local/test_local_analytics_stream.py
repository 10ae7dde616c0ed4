"""The local stack counts tracking events for real: POST /v1/events over HTTP, the worker reads
the `events` table's stream on DynamoDB Local and calls the app's `on_dynamodb_record` handler,
and the merchant's funnel report moves (within a bounded wait)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from local.stack import LocalStack
from tests.local.test_local_stack import http

CHINA = timezone(timedelta(hours=8))


@pytest.mark.e2e
@pytest.mark.dynamodb_local
def test_tracking_events_reach_the_funnel_report_through_the_worker_and_the_stream():
    with LocalStack(seed=False) as stack:
        api = stack.api_url
        status, login = http("POST", f"{api}/v1/auth/login", {"code": "alice-1"})
        assert status == 200, login
        now = datetime.now(CHINA)
        batch = {"events": [{"event_id": f"stack-{n:04d}", "type": "page_view", "at": now.isoformat(), "scene": 1007}
                            for n in range(3)]}
        assert http("POST", f"{api}/v1/events", batch, token=login["token"]) == (
            200, {"received": 3, "stored": 3, "duplicates": 0})
        assert http("POST", f"{api}/v1/events", batch, token=login["token"])[1]["duplicates"] == 3
        status, admin = http("POST", f"{api}/v1/admin/auth/login",
                             {"username": stack.env["ADMIN_USERNAME"], "password": stack.env["ADMIN_PASSWORD"]})
        assert status == 200, admin
        day = now.date().isoformat()
        report: dict = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, report = http("GET", f"{api}/v1/admin/reports/funnel?from={day}&to={day}", token=admin["token"])
            assert status == 200, report
            if report["items"][0]["pv"]:
                break
            time.sleep(0.5)
        assert report["items"][0]["pv"] == 3 and report["items"][0]["stages"]["exposure"] == 1
        assert report["sources"] == [{"source": "scene_1007", "pv": 3, "product_views": 0, "add_to_cart": 0,
                                      "exposure": 1, "click": 0, "cart": 0}]
