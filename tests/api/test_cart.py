"""The cart: quantities add up atomically, limits, specs, selection and flagged problems."""
from __future__ import annotations

import pytest

from chalicelib.storage.skus import SkuRecord
from chalicelib.storage.carts import CartLineRecord
from tests.api.helpers import assert_envelope, call, log_in


@pytest.fixture
def shopper(client, demo_store):
    token, _ = log_in(client)
    return token


def _lines(cart: dict) -> dict[str, dict]:
    return {line["sku_id"]: line for line in cart["lines"]}


def test_adding_the_same_sku_twice_adds_up_the_quantities(client, shopper):
    call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 2}, token=shopper)
    status, cart, _ = call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 3}, token=shopper)
    assert status == 200
    line = _lines(cart)["sku-fuji-5"]
    assert line["quantity"] == 5 and line["subtotal_fen"] == 5 * 3990 and line["problem"] is None
    assert cart["goods_fen"] == 5 * 3990


def test_a_line_may_not_exceed_99_units_and_nothing_changes(client, shopper):
    call(client, "POST", "/v1/cart/items", {"sku_id": "sku-navel-5", "quantity": 98}, token=shopper)
    status, body, _ = call(client, "POST", "/v1/cart/items", {"sku_id": "sku-navel-5", "quantity": 2}, token=shopper)
    assert status == 409
    assert_envelope(body, "cart_line_limit")
    assert _lines(call(client, "GET", "/v1/cart", token=shopper)[1])["sku-navel-5"]["quantity"] == 98


@pytest.mark.parametrize("payload, status, code", [
    ({"sku_id": "sku-nope", "quantity": 1}, 404, "sku_not_found"),
    ({"sku_id": "sku-fuji-5", "quantity": 0}, 400, "validation_error"),
    ({"sku_id": "sku-fuji-5", "quantity": -1}, 400, "validation_error"),
    ({"sku_id": "sku-fuji-5", "quantity": 100}, 400, "validation_error"),
    ({"sku_id": "sku-fuji-5", "quantity": "1"}, 400, "validation_error"),
])
def test_bad_additions_are_refused_and_write_nothing(client, shopper, payload, status, code):
    got, body, _ = call(client, "POST", "/v1/cart/items", payload, token=shopper)
    assert got == status
    assert_envelope(body, code)
    assert CartLineRecord.count() == 0


def test_unselected_lines_do_not_count_and_quantity_can_be_set(client, shopper):
    call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 1}, token=shopper)
    call(client, "POST", "/v1/cart/items", {"sku_id": "sku-navel-5", "quantity": 1}, token=shopper)
    status, cart, _ = call(client, "PATCH", "/v1/cart/items/sku-navel-5", {"selected": False, "quantity": 4},
                           token=shopper)
    assert status == 200
    assert _lines(cart)["sku-navel-5"]["quantity"] == 4 and cart["goods_fen"] == 3990


def test_switching_spec_moves_the_quantity_to_the_other_sku(client, shopper):
    call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 2}, token=shopper)
    status, cart, _ = call(client, "PATCH", "/v1/cart/items/sku-fuji-5", {"sku_id_new": "sku-fuji-10"}, token=shopper)
    assert status == 200
    assert list(_lines(cart)) == ["sku-fuji-10"] and _lines(cart)["sku-fuji-10"]["quantity"] == 2


def test_switching_to_a_spec_of_another_product_is_400(client, shopper):
    call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 2}, token=shopper)
    status, body, _ = call(client, "PATCH", "/v1/cart/items/sku-fuji-5", {"sku_id_new": "sku-navel-5"}, token=shopper)
    assert status == 400
    assert_envelope(body, "different_product")


def test_lines_gone_off_sale_or_short_are_flagged_not_dropped(client, shopper):
    call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 1}, token=shopper)
    call(client, "POST", "/v1/cart/items", {"sku_id": "sku-cherry-2kg", "quantity": 4}, token=shopper)
    SkuRecord("sku-fuji-5").update(actions=[SkuRecord.on_sale.set(False)])
    SkuRecord("sku-cherry-2kg").update(actions=[SkuRecord.available.set(1)])
    cart = call(client, "GET", "/v1/cart", token=shopper)[1]
    assert _lines(cart)["sku-fuji-5"]["problem"] == "off_sale"
    assert _lines(cart)["sku-cherry-2kg"]["problem"] == "out_of_stock"
    assert cart["goods_fen"] == 0


def test_removing_a_line_twice_answers_the_cart_both_times(client, shopper):
    call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 1}, token=shopper)
    assert call(client, "DELETE", "/v1/cart/items/sku-fuji-5", token=shopper)[1]["lines"] == []
    assert call(client, "DELETE", "/v1/cart/items/sku-fuji-5", token=shopper)[0] == 200


def test_patching_a_line_not_in_the_cart_is_404(client, shopper):
    status, body, _ = call(client, "PATCH", "/v1/cart/items/sku-fuji-5", {"quantity": 2}, token=shopper)
    assert status == 404
    assert_envelope(body, "cart_line_not_found")


def test_carts_are_private_to_each_user(client, shopper):
    call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 1}, token=shopper)
    other, _ = log_in(client, "bob-1")
    assert call(client, "GET", "/v1/cart", token=other)[1]["lines"] == []
