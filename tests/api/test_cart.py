"""The cart: quantities add up atomically, limits, specs, selection and flagged problems."""
from __future__ import annotations

import pytest

from chalicelib import clock
from chalicelib.services import cart
from chalicelib.storage import carts, catalog_batch
from chalicelib.storage.carts import CartLineRecord
from chalicelib.storage.products import ProductRecord
from chalicelib.storage.skus import SkuRecord
from tests.api.helpers import assert_envelope, call, log_in
from tests.storage.call_counter import dynamodb_calls


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


# ------------------------------------------- add to cart: every refusal writes nothing


@pytest.mark.parametrize("record", [SkuRecord("sku-fuji-5"), ProductRecord("p-fuji")], ids=["sku", "product"])
def test_adding_a_sku_off_sale_is_409_and_writes_nothing(client, shopper, record):
    record.update(actions=[type(record).on_sale.set(False)])
    status, body, _ = call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 1}, token=shopper)
    assert status == 409
    assert_envelope(body, "sku_unavailable")
    assert CartLineRecord.count() == 0


def _fill_cart(user_id: str, lines: int) -> None:
    for i in range(lines):
        carts.add_quantity(user_id, f"sku-gone-{i:02d}", 1, 99, clock.now())


def test_a_full_cart_refuses_a_new_line_but_still_adds_to_its_lines(client, demo_store):
    token, user = log_in(client)
    _fill_cart(user["user_id"], cart.MAX_CART_LINES - 1)
    assert call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 1}, token=token)[0] == 200
    status, body, _ = call(client, "POST", "/v1/cart/items", {"sku_id": "sku-navel-5", "quantity": 1}, token=token)
    assert status == 409
    assert_envelope(body, "cart_full")
    assert CartLineRecord.count() == cart.MAX_CART_LINES
    status, body, _ = call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 2}, token=token)
    assert status == 200 and _lines(body)["sku-fuji-5"]["quantity"] == 3
    assert len(body["lines"]) == cart.MAX_CART_LINES and _lines(body)["sku-gone-00"]["problem"] == "off_sale"


def test_the_answer_of_an_add_is_the_cart_as_stored(client, shopper):
    call(client, "POST", "/v1/cart/items", {"sku_id": "sku-navel-5", "quantity": 1}, token=shopper)
    added = call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 2}, token=shopper)[1]
    assert added == call(client, "GET", "/v1/cart", token=shopper)[1]
    assert [line["sku_id"] for line in added["lines"]] == ["sku-navel-5", "sku-fuji-5"]
    assert _lines(added)["sku-fuji-5"]["name"] == "烟台红富士苹果" and added["goods_fen"] == 2990 + 2 * 3990


def test_lines_stored_without_their_product_are_still_shown_whole(client, demo_store):
    token, user = log_in(client)
    now = clock.now()
    CartLineRecord(user["user_id"], "sku-fuji-5", quantity=2, selected=True, added_at=now, updated_at=now).save()
    line = _lines(call(client, "GET", "/v1/cart", token=token)[1])["sku-fuji-5"]
    assert (line["product_id"], line["name"], line["problem"]) == ("p-fuji", "烟台红富士苹果", None)
    call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 1}, token=token)
    assert CartLineRecord.get(user["user_id"], "sku-fuji-5").product_id == "p-fuji"


# ------------------------------------------------------ DynamoDB calls per cart request


def test_add_to_cart_costs_4_dynamodb_calls_once_the_process_knows_the_skus_product(client, shopper):
    catalog_batch.forget_known_products()
    call(client, "POST", "/v1/cart/items", {"sku_id": "sku-navel-5", "quantity": 1}, token=shopper)
    with dynamodb_calls() as first:  # a SKU this process never read, of a product not in the cart
        call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 1}, token=shopper)
    assert first == {"GetItem": 1, "Query": 1, "BatchGetItem": 2, "UpdateItem": 1}
    call(client, "DELETE", "/v1/cart/items/sku-fuji-5", token=shopper)
    with dynamodb_calls() as again:  # the session, the lines, SKUs + products, the write
        status, body, _ = call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 1},
                               token=shopper)
    assert status == 200 and len(body["lines"]) == 2
    assert again == {"GetItem": 1, "Query": 1, "BatchGetItem": 1, "UpdateItem": 1}
    catalog_batch.forget_known_products()
    with dynamodb_calls() as same_product:  # another spec of a product in the cart: known from its line
        call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-10", "quantity": 1}, token=shopper)
    assert same_product == {"GetItem": 1, "Query": 1, "BatchGetItem": 1, "UpdateItem": 1}


def test_the_cart_view_costs_one_query_and_one_batch_get(client, shopper):
    for sku_id in ("sku-fuji-5", "sku-navel-5", "sku-cherry-1kg"):
        call(client, "POST", "/v1/cart/items", {"sku_id": sku_id, "quantity": 1}, token=shopper)
    catalog_batch.forget_known_products()  # the lines know their products
    with dynamodb_calls() as calls:
        assert len(call(client, "GET", "/v1/cart", token=shopper)[1]["lines"]) == 3
    assert calls == {"GetItem": 1, "Query": 1, "BatchGetItem": 1}
