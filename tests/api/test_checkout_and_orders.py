"""Checkout preview, placing orders with stock reservation, and the user's order routes."""
from __future__ import annotations

import uuid

import pytest

from chalicelib.storage.carts import CartLineRecord
from chalicelib.storage.orders import OrderRecord
from tests.api.helpers import assert_envelope, call, log_in
from tests.storage.order_fixtures import counters

ADDRESS = {"name": "张三", "phone": "13800138000", "province": "上海市", "city": "上海市", "district": "徐汇区",
           "detail": "漕溪北路88号"}


@pytest.fixture
def shopper(client, demo_store):
    token, _ = log_in(client)
    status, address, _ = call(client, "POST", "/v1/addresses", ADDRESS, token=token)
    assert status == 201, address
    return token, address["address_id"]


def _order(client, token, body, checkout_token=None):
    return call(client, "POST", "/v1/orders", {**body, "checkout_token": checkout_token or uuid.uuid4().hex},
                token=token)


def test_preview_prices_goods_and_express_fee(client, shopper):
    token, address_id = shopper
    status, quote, _ = call(client, "POST", "/v1/checkout/preview",
                            {"items": [{"sku_id": "sku-fuji-5", "quantity": 2}], "address_id": address_id},
                            token=token)
    assert status == 200
    assert (quote["goods_fen"], quote["delivery_fee_fen"], quote["payable_fen"]) == (7980, 800, 8780)
    assert quote["delivery_method"] == "express" and quote["lines"][0]["payable_fen"] == 7980


def test_preview_takes_the_selected_cart_lines_when_no_items_are_sent(client, shopper):
    token, address_id = shopper
    call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-10", "quantity": 1}, token=token)
    call(client, "POST", "/v1/cart/items", {"sku_id": "sku-navel-5", "quantity": 1}, token=token)
    call(client, "PATCH", "/v1/cart/items/sku-navel-5", {"selected": False}, token=token)
    quote = call(client, "POST", "/v1/checkout/preview", {"address_id": address_id}, token=token)[1]
    assert [line["sku_id"] for line in quote["lines"]] == ["sku-fuji-10"]


@pytest.mark.parametrize("body, status, code", [
    ({"items": [{"sku_id": "sku-fuji-5", "quantity": 1}]}, 400, "address_required"),
    ({"items": [{"sku_id": "sku-fuji-5", "quantity": 1}], "delivery_method": "pickup"}, 400, "store_required"),
    ({"items": [{"sku_id": "sku-fuji-5", "quantity": 1}], "delivery_method": "pickup", "store_id": "nope"},
     404, "store_not_found"),
    ({"items": [{"sku_id": "sku-fuji-5", "quantity": 1}], "delivery_method": "none"}, 400, "delivery_method_not_allowed"),
    ({"items": [{"sku_id": "sku-giftcard-100", "quantity": 1}], "delivery_method": "express"}, 400,
     "delivery_method_not_allowed"),
    ({"items": [{"sku_id": "sku-ghost", "quantity": 1}], "delivery_method": "pickup", "store_id": "store-xuhui"},
     404, "sku_not_found"),
    ({"items": [{"sku_id": "sku-cherry-2kg", "quantity": 5}], "delivery_method": "pickup", "store_id": "store-xuhui"},
     409, "insufficient_stock"),
    ({"items": [{"sku_id": "sku-fuji-5", "quantity": 1}, {"sku_id": "sku-fuji-5", "quantity": 1}]}, 400,
     "validation_error"),
    ({"items": []}, 400, "validation_error"),
    ({}, 400, "cart_empty"),
    ({"items": [{"sku_id": "sku-fuji-5", "quantity": 1}], "delivery_method": "pickup", "store_id": "store-xuhui",
      "coupon_ids": ["c1"]}, 404, "coupon_not_found"),
])
def test_bad_checkouts_are_refused_and_place_nothing(client, shopper, body, status, code):
    token, _ = shopper
    got, error, _ = call(client, "POST", "/v1/checkout/preview", body, token=token)
    assert (got, error["Code"]) == (status, code), error
    got, error, _ = _order(client, token, body)
    assert (got, error["Code"]) == (status, code), error
    assert OrderRecord.count() == 0 and counters("sku-fuji-5")["reserved"] == 0


def test_someone_elses_address_is_404(client, shopper):
    _, address_id = shopper
    other, _ = log_in(client, "bob-1")
    status, error, _ = call(client, "POST", "/v1/checkout/preview",
                            {"items": [{"sku_id": "sku-fuji-5", "quantity": 1}], "address_id": address_id},
                            token=other)
    assert status == 404
    assert_envelope(error, "address_not_found")


def test_placing_an_order_reserves_stock_snapshots_the_address_and_clears_the_cart(client, shopper):
    token, address_id = shopper
    call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 2}, token=token)
    status, order, _ = _order(client, token, {"address_id": address_id})
    assert status == 201
    assert order["status"] == "pending_payment" and order["payable_fen"] == 8780
    assert order["address"]["detail"] == ADDRESS["detail"] and order["out_trade_no"] == order["order_id"]
    assert 6 <= len(order["out_trade_no"]) <= 32 and order["pay_deadline"] > order["created_at"]
    assert counters("sku-fuji-5")["reserved"] == 2 and counters("sku-fuji-5")["available"] == 198
    assert CartLineRecord.count() == 0


def test_replaying_a_checkout_token_answers_the_same_order_with_200(client, shopper):
    token, address_id = shopper
    body = {"items": [{"sku_id": "sku-fuji-5", "quantity": 1}], "address_id": address_id}
    first = _order(client, token, body, "token-123456")
    again = _order(client, token, body, "token-123456")
    assert (first[0], again[0]) == (201, 200) and first[1]["order_id"] == again[1]["order_id"]
    assert counters("sku-fuji-5")["reserved"] == 1 and OrderRecord.count() == 1


def test_a_checkout_token_reused_for_a_different_order_is_409(client, shopper):
    token, address_id = shopper
    _order(client, token, {"items": [{"sku_id": "sku-fuji-5", "quantity": 1}], "address_id": address_id}, "tok-0000001")
    status, error, _ = _order(client, token, {"items": [{"sku_id": "sku-fuji-5", "quantity": 2}],
                                              "address_id": address_id}, "tok-0000001")
    assert status == 409
    assert_envelope(error, "checkout_token_reused")


def test_a_virtual_only_order_ships_nothing(client, shopper):
    token, _ = shopper
    status, order, _ = _order(client, token, {"items": [{"sku_id": "sku-giftcard-100", "quantity": 2}]})
    assert status == 201 and order["delivery_method"] == "none" and order["delivery_fee_fen"] == 0


def test_orders_are_listed_newest_first_with_a_status_filter_and_cursor(client, shopper):
    token, _ = shopper
    ids = [_order(client, token, {"items": [{"sku_id": "sku-giftcard-100", "quantity": 1}]})[1]["order_id"]
           for _ in range(3)]
    call(client, "POST", f"/v1/orders/{ids[0]}/cancel", token=token)
    page = call(client, "GET", "/v1/orders?limit=2", token=token)[1]
    assert [o["order_id"] for o in page["items"]] == [ids[2], ids[1]] and page["next_cursor"]
    rest = call(client, "GET", f"/v1/orders?limit=2&cursor={page['next_cursor']}", token=token)[1]
    assert [o["order_id"] for o in rest["items"]] == [ids[0]]
    cancelled = call(client, "GET", "/v1/orders?status=cancelled", token=token)[1]
    assert [o["order_id"] for o in cancelled["items"]] == [ids[0]]


def test_bad_list_queries_are_400(client, shopper):
    token, _ = shopper
    for query in ("limit=0", "limit=51", "status=lost", "cursor=forged", "limit=abc"):
        status, error, _ = call(client, "GET", f"/v1/orders?{query}", token=token)
        assert status == 400, query
        assert_envelope(error)


def test_another_users_order_is_404_for_read_cancel_and_confirm(client, shopper):
    token, _ = shopper
    order = _order(client, token, {"items": [{"sku_id": "sku-giftcard-100", "quantity": 1}]})[1]
    other, _ = log_in(client, "bob-1")
    for method, path in (("GET", ""), ("POST", "/cancel"), ("POST", "/confirm-receipt")):
        status, error, _ = call(client, method, f"/v1/orders/{order['order_id']}{path}", token=other)
        assert status == 404
        assert_envelope(error, "order_not_found")
    assert call(client, "GET", f"/v1/orders/{order['order_id']}", token=token)[1]["status"] == "pending_payment"


def test_cancel_releases_stock_and_repeating_it_is_200(client, shopper):
    token, address_id = shopper
    order = _order(client, token, {"items": [{"sku_id": "sku-durian-3kg", "quantity": 2}], "address_id": address_id})[1]
    first = call(client, "POST", f"/v1/orders/{order['order_id']}/cancel", token=token)
    again = call(client, "POST", f"/v1/orders/{order['order_id']}/cancel", token=token)
    assert (first[0], again[0]) == (200, 200) and again[1]["status"] == "cancelled"
    assert counters("sku-durian-3kg") == {"available": 20, "allocated": 0, "reserved": 0, "sold": 0, "stock_in": 20}


def test_confirming_receipt_of_an_unshipped_order_is_409(client, shopper):
    token, _ = shopper
    order = _order(client, token, {"items": [{"sku_id": "sku-giftcard-100", "quantity": 1}]})[1]
    status, error, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/confirm-receipt", token=token)
    assert status == 409
    assert_envelope(error, "invalid_order_state")


def test_malformed_ids_in_the_path_are_404_not_500(client, shopper):
    token, _ = shopper
    for bad in ("x" * 65, "a%20b", "%E8%8B%B9"):
        status, error, _ = call(client, "GET", f"/v1/orders/{bad}", token=token)
        assert status == 404
        assert_envelope(error)
