"""Merchant catalog routes: roles, validation, and that every edit shows in lists and search."""
from __future__ import annotations

import pytest

from chalicelib.services.auth import ensure_first_admin
from tests.api.helpers import assert_envelope, call, log_in
from tests.api.test_catalog import ids
from tests.conftest import TEST_ENV

APPLE_BODY = {"name": "阿克苏冰糖心苹果", "category_id": "c-apple", "keywords": ["苹果", "冰糖心"],
              "images": ["https://img.example.com/aksu.jpg"], "description": "新疆阿克苏",
              "skus": [{"specs": {"重量": "5斤装"}, "price_fen": 4590, "market_price_fen": 5990, "stock": 80,
                        "low_stock_threshold": 10},
                       {"specs": {"重量": "10斤装"}, "price_fen": 7990, "stock": 3, "low_stock_threshold": 5}]}


@pytest.fixture
def admin(client, demo_store):
    assert ensure_first_admin() is True
    status, body, _ = call(client, "POST", "/v1/admin/auth/login",
                           {"username": TEST_ENV["ADMIN_USERNAME"], "password": TEST_ENV["ADMIN_PASSWORD"]})
    assert status == 200, body
    return client, body["token"]


def ok(client, method: str, path: str, body=None, token=None, status: int = 200) -> dict:
    got, reply, _ = call(client, method, path, body, token=token)
    assert got == status, reply
    return reply


ADMIN_ROUTES = [("POST", "/v1/admin/categories", {"name": "x"}), ("POST", "/v1/admin/products", APPLE_BODY),
                ("GET", "/v1/admin/products/p-fuji", None), ("PATCH", "/v1/admin/products/p-fuji", {"name": "x"}),
                ("PATCH", "/v1/admin/skus/sku-fuji-5", {"price_fen": 1}), ("GET", "/v1/admin/skus/sku-fuji-5", None)]


def test_admin_routes_are_401_without_a_token_and_403_with_a_user_token(admin):
    client, _ = admin
    user_token, _ = log_in(client)
    for method, path, body in ADMIN_ROUTES:
        status, reply, _ = call(client, method, path, body)
        assert status == 401, path
        assert_envelope(reply, "unauthorized")
        status, reply, _ = call(client, method, path, body, token=user_token)
        assert status == 403, path
        assert_envelope(reply, "forbidden")
    assert ids(client, q="x") == []  # nothing was changed


def test_categories_nest_three_levels_deep_and_no_deeper(admin):
    client, token = admin
    top = ok(client, "POST", "/v1/admin/categories", {"name": "蔬菜"}, token, 201)
    middle = ok(client, "POST", "/v1/admin/categories", {"name": "叶菜", "parent_id": top["category_id"]}, token, 201)
    leaf = ok(client, "POST", "/v1/admin/categories", {"name": "菠菜", "parent_id": middle["category_id"],
                                                        "sort_order": 1}, token, 201)
    assert (top["level"], middle["level"], leaf["level"]) == (1, 2, 3)
    status, body, _ = call(client, "POST", "/v1/admin/categories", {"name": "太深", "parent_id": leaf["category_id"]},
                           token=token)
    assert status == 400
    assert_envelope(body, "category_too_deep")
    status, body, _ = call(client, "POST", "/v1/admin/categories", {"name": "孤儿", "parent_id": "c-nope"}, token=token)
    assert status == 404
    assert_envelope(body, "category_not_found")
    tree = ok(client, "GET", "/v1/categories")["items"]
    veg = next(node for node in tree if node["category_id"] == top["category_id"])
    assert veg["children"][0]["children"][0]["name"] == "菠菜"


def test_a_created_product_appears_in_its_categories_and_in_search(admin):
    client, token = admin
    created = ok(client, "POST", "/v1/admin/products", APPLE_BODY, token, 201)
    product_id = created["product_id"]
    assert [sku["stock_in"] for sku in created["skus"]] == [80, 3]
    assert [sku["stock_status"] for sku in created["skus"]] == ["in_stock", "low"]
    assert all(sku["available"] == sku["stock_in"] and sku["reserved"] == 0 for sku in created["skus"])
    for params in ({}, {"category_id": "c-fruit"}, {"category_id": "c-apple"}, {"q": "苹果"}, {"q": "冰糖"},
                   {"q": "阿克苏"}, {"sort": "price_asc", "min_price_fen": 4590, "max_price_fen": 4590}):
        assert product_id in ids(client, **params), params
    assert product_id not in ids(client, category_id="c-citrus")
    detail = ok(client, "GET", f"/v1/products/{product_id}")
    assert [sku["price_fen"] for sku in detail["skus"]] == [4590, 7990]
    assert detail["skus"][0]["market_price_fen"] == 5990 and detail["description"] == "新疆阿克苏"


BAD_BODIES = [
    ({"skus": []}, "skus"), ({"skus": [{"specs": {}, "price_fen": 0, "stock": 1}]}, "skus.0.price_fen"),
    ({"skus": [{"specs": {}, "price_fen": 12.5, "stock": 1}]}, "skus.0.price_fen"),
    ({"skus": [{"specs": {}, "price_fen": "100", "stock": 1}]}, "skus.0.price_fen"),
    ({"skus": [{"specs": {}, "price_fen": True, "stock": 1}]}, "skus.0.price_fen"),
    ({"skus": [{"specs": {}, "price_fen": 100, "stock": -1}]}, "skus.0.stock"),
    ({"skus": [{"specs": {}, "price_fen": 100, "stock": 1}] * 51}, "skus"),
    ({"images": ["http://insecure.example.com/a.jpg"]}, "images.0"), ({"name": ""}, "name"),
    ({"virtual": "yes"}, "virtual"), ({"colour": "red"}, "colour"),
]


def test_a_bad_product_body_is_400_and_creates_nothing(admin):
    client, token = admin
    for change, field in BAD_BODIES:
        status, body, _ = call(client, "POST", "/v1/admin/products", {**APPLE_BODY, **change}, token=token)
        assert status == 400, change
        assert_envelope(body, "validation_error")
        assert body["Details"][0]["field"] == field, change
    assert ids(client, q="冰糖") == []


def test_a_product_in_an_unknown_category_is_404(admin):
    client, token = admin
    status, body, _ = call(client, "POST", "/v1/admin/products", {**APPLE_BODY, "category_id": "c-nope"}, token=token)
    assert status == 404
    assert_envelope(body, "category_not_found")
    assert ids(client, q="冰糖") == []


def test_a_price_change_re_sorts_the_product(admin):
    client, token = admin
    assert ids(client, sort="price_asc")[0] == "p-navel"
    ok(client, "PATCH", "/v1/admin/skus/sku-durian-3kg", {"price_fen": 990}, token)
    assert ids(client, sort="price_asc")[0] == "p-durian"
    assert ids(client, sort="price_desc")[-1] == "p-durian"
    assert "p-durian" in ids(client, sort="price_asc", max_price_fen=1000, category_id="c-fruit")
    ok(client, "PATCH", "/v1/admin/skus/sku-durian-3kg", {"price_fen": 99900}, token)
    assert ids(client, sort="price_desc")[0] == "p-durian"
    assert ok(client, "GET", "/v1/products/p-durian")["skus"][0]["price_fen"] == 99900


def test_moving_a_product_to_another_category_moves_its_listing(admin):
    client, token = admin
    detail = ok(client, "PATCH", "/v1/admin/products/p-fuji", {"category_id": "c-cherry"}, token)
    assert detail["category_path"] == ["c-fruit", "c-fruit-imported", "c-cherry"]
    assert "p-fuji" not in ids(client, category_id="c-apple")
    assert "p-fuji" not in ids(client, category_id="c-fruit-domestic")
    assert "p-fuji" in ids(client, category_id="c-fruit-imported") and "p-fuji" in ids(client, category_id="c-fruit")
    assert ids(client, q="苹果", category_id="c-cherry") == ["p-fuji"]


def test_renaming_a_product_changes_what_finds_it(admin):
    client, token = admin
    ok(client, "PATCH", "/v1/admin/products/p-navel", {"name": "赣南橙", "keywords": ["甜橙"]}, token)
    assert ids(client, q="脐橙") == [] and ids(client, q="赣南") == ["p-navel"] and ids(client, q="甜橙") == ["p-navel"]


def test_an_off_sale_product_is_hidden_from_lists_and_404_for_users_but_not_for_admins(admin):
    client, token = admin
    ok(client, "PATCH", "/v1/admin/products/p-cherry", {"on_sale": False}, token)
    for params in ({}, {"q": "车厘子"}, {"category_id": "c-cherry"}, {"sort": "sales"}, {"sort": "price_asc"}):
        assert "p-cherry" not in ids(client, **params), params
    status, body, _ = call(client, "GET", "/v1/products/p-cherry")
    assert status == 404
    assert_envelope(body, "product_not_found")
    assert ok(client, "GET", "/v1/admin/products/p-cherry", token=token)["on_sale"] is False
    ok(client, "PATCH", "/v1/admin/products/p-cherry", {"on_sale": True}, token)
    assert "p-cherry" in ids(client, q="车厘子")


def test_a_product_whose_skus_are_all_off_sale_is_not_listed(admin):
    client, token = admin
    ok(client, "PATCH", "/v1/admin/skus/sku-fuji-5", {"on_sale": False}, token)
    assert ok(client, "GET", "/v1/products/p-fuji")["skus"][0]["on_sale"] is False
    assert "p-fuji" in ids(client, sort="price_asc", min_price_fen=6990, max_price_fen=6990)  # the 10斤 SKU now
    ok(client, "PATCH", "/v1/admin/skus/sku-fuji-10", {"on_sale": False}, token)
    assert "p-fuji" not in ids(client) and ids(client, q="红富士") == []


def test_sku_patch_changes_fields_and_answers_the_counters(admin):
    client, token = admin
    sku = ok(client, "PATCH", "/v1/admin/skus/sku-fuji-5",
             {"specs": {"重量": "5斤装", "等级": "特级"}, "low_stock_threshold": 250, "market_price_fen": 0}, token)
    assert sku["specs"] == {"重量": "5斤装", "等级": "特级"} and sku["market_price_fen"] is None
    assert sku["stock_status"] == "low"
    assert {key: sku[key] for key in ("available", "allocated", "reserved", "sold", "stock_in")} == {
        "available": 200, "allocated": 0, "reserved": 0, "sold": 0, "stock_in": 200}
    assert ok(client, "GET", "/v1/admin/skus/sku-fuji-5", token=token) == sku
    assert ok(client, "PATCH", "/v1/admin/skus/sku-fuji-5", {}, token) == sku  # nothing to change


def test_unknown_ids_in_admin_routes_are_404(admin):
    client, token = admin
    for method, path, body, code in [
            ("PATCH", "/v1/admin/products/p-nope", {"name": "x"}, "product_not_found"),
            ("GET", "/v1/admin/products/p-nope", None, "product_not_found"),
            ("PATCH", "/v1/admin/products/p-fuji", {"category_id": "c-nope"}, "category_not_found"),
            ("PATCH", "/v1/admin/skus/sku-nope", {"price_fen": 100}, "sku_not_found"),
            ("PATCH", "/v1/admin/skus/sku-nope", {"specs": {"a": "b"}}, "sku_not_found"),
            ("GET", "/v1/admin/skus/sku-nope", None, "sku_not_found")]:
        status, reply, _ = call(client, method, path, body, token=token)
        assert status == 404, path
        assert_envelope(reply, code)


def test_bad_patches_are_400(admin):
    client, token = admin
    for path, body, field in [("/v1/admin/skus/sku-fuji-5", {"price_fen": 0}, "price_fen"),
                              ("/v1/admin/skus/sku-fuji-5", {"price_fen": 39.9}, "price_fen"),
                              ("/v1/admin/skus/sku-fuji-5", {"available": 5}, "available"),
                              ("/v1/admin/products/p-fuji", {"on_sale": "false"}, "on_sale"),
                              ("/v1/admin/products/p-fuji", {"keywords": ["x" * 21]}, "keywords.0")]:
        status, reply, _ = call(client, "PATCH", path, body, token=token)
        assert status == 400, body
        assert_envelope(reply, "validation_error")
        assert reply["Details"][0]["field"] == field
