"""The merchant's order routes: list and filter, read one, ship."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from chalicelib.storage import orders
from tests.storage.order_fixtures import pay
from tests.api.helpers import admin_token, assert_envelope, call, log_in, place_pickup_order


@pytest.fixture
def shop(client, demo_store):
    user, _ = log_in(client)
    return user, admin_token(client)


def _place(client, user) -> dict:
    return place_pickup_order(client, user)


def _pay(order_id: str) -> None:
    pay(orders.get_order(order_id))


def test_the_merchant_lists_orders_by_status_newest_first(client, shop):
    user, admin = shop
    first, second = _place(client, user), _place(client, user)
    _pay(first["order_id"])
    everything = call(client, "GET", "/v1/admin/orders", token=admin)[1]
    assert [o["order_id"] for o in everything["items"]] == [second["order_id"], first["order_id"]]
    paid = call(client, "GET", "/v1/admin/orders?status=paid", token=admin)[1]
    assert [o["order_id"] for o in paid["items"]] == [first["order_id"]]
    assert [p["amount_fen"] for p in paid["items"][0]["payments"]] == [first["payable_fen"]]
    assert paid["items"][0]["refunds"] == [] and paid["items"][0]["user_id"]


def test_the_time_range_filter_needs_an_offset_and_bounds_the_list(client, shop):
    user, admin = shop
    _place(client, user)
    future = quote("2099-01-01T00:00:00+08:00")
    assert call(client, "GET", f"/v1/admin/orders?created_from={future}", token=admin)[1]["items"] == []
    status, error, _ = call(client, "GET", "/v1/admin/orders?created_from=2026-01-01T00:00:00", token=admin)
    assert status == 400
    assert_envelope(error, "validation_error")


def test_a_time_range_that_ends_before_it_starts_is_400_not_500(client, shop):
    # Found by the fuzzer: DynamoDB refuses a BETWEEN with its bounds out of order (was a 500).
    _, admin = shop
    start, end = quote("2026-06-01T00:00:00+08:00"), quote("2026-01-01T00:00:00+08:00")
    status, error, _ = call(client, "GET", f"/v1/admin/orders?created_from={start}&created_to={end}", token=admin)
    assert status == 400
    assert_envelope(error, "validation_error")


@pytest.mark.parametrize("query", [
    "created_to=0168-03-19T10:56:52%2B13:21",  # ends before any order can exist (was a 500)
    "status=paid&created_from=0001-01-01T00:00:00%2B13:00",  # cannot even be put in UTC (was a 500)
    "created_from=9999-12-31T23:00:00-13:00",
])
def test_far_off_times_in_the_range_answer_an_empty_list_not_500(client, shop, query):
    user, admin = shop
    _place(client, user)
    status, page, _ = call(client, "GET", f"/v1/admin/orders?{query}", token=admin)
    assert status == 200, page
    assert page["items"] == [] and page["next_cursor"] is None


def test_shipping_a_paid_order_records_the_shipment(client, shop):
    user, admin = shop
    order = _place(client, user)
    _pay(order["order_id"])
    body = {"carrier": "顺丰速运", "tracking_no": "SF1234567890"}
    status, shipped, _ = call(client, "POST", f"/v1/admin/orders/{order['order_id']}/ship", body, token=admin)
    assert status == 200 and shipped["status"] == "shipped"
    assert shipped["shipment"]["tracking_no"] == "SF1234567890"
    mine = call(client, "GET", f"/v1/orders/{order['order_id']}", token=user)[1]
    assert mine["shipment"]["carrier"] == "顺丰速运"
    assert call(client, "POST", f"/v1/orders/{order['order_id']}/confirm-receipt", token=user)[1]["status"] == "completed"


def test_shipping_an_unpaid_order_is_409_and_an_unknown_one_404(client, shop):
    user, admin = shop
    order = _place(client, user)
    body = {"carrier": "顺丰速运", "tracking_no": "SF1234567890"}
    status, error, _ = call(client, "POST", f"/v1/admin/orders/{order['order_id']}/ship", body, token=admin)
    assert status == 409
    assert_envelope(error, "invalid_order_state")
    status, error, _ = call(client, "POST", "/v1/admin/orders/o-missing/ship", body, token=admin)
    assert status == 404


def test_a_user_token_on_merchant_order_routes_is_403(client, shop):
    user, _ = shop
    for method, path in (("GET", "/v1/admin/orders"), ("GET", "/v1/admin/orders/x")):
        status, error, _ = call(client, method, path, token=user)
        assert status == 403
        assert_envelope(error, "forbidden")
