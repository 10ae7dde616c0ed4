"""Public catalog reads on the demo store: tree, lists, search, sorts, cursors, product pages, stores."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest

from chalicelib.storage.skus import SkuRecord
from tests.api.helpers import assert_envelope, call

FRUIT = {"p-fuji", "p-navel", "p-cherry", "p-durian"}
EVERYTHING = FRUIT | {"p-giftcard"}
PRICES = {"p-fuji": 3990, "p-navel": 2990, "p-cherry": 12800, "p-durian": 19900, "p-giftcard": 10000}


@pytest.fixture
def store(client, demo_store):
    return client


def products(client, **params) -> dict:
    status, body, _ = call(client, "GET", f"/v1/products?{urlencode(params)}")
    assert status == 200, body
    return body


def ids(client, **params) -> list[str]:
    return [item["product_id"] for item in products(client, **params)["items"]]


def walk(client, **params) -> list[str]:
    """Every page of a list, following next_cursor."""
    seen, cursor = [], None
    for _ in range(50):
        page = products(client, **params, **({"cursor": cursor} if cursor else {}))
        seen += [item["product_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursor never ended")


def test_the_category_tree_has_three_levels_in_display_order(store):
    status, body, _ = call(store, "GET", "/v1/categories")
    assert status == 200
    fruit, gift = body["items"]
    assert (fruit["category_id"], fruit["level"], fruit["parent_id"]) == ("c-fruit", 1, None)
    domestic = fruit["children"][0]
    assert (domestic["category_id"], domestic["level"], domestic["parent_id"]) == ("c-fruit-domestic", 2, "c-fruit")
    assert [c["category_id"] for c in domestic["children"]] == ["c-apple", "c-citrus"]
    assert {c["level"] for c in domestic["children"]} == {3}
    assert gift["children"][0]["children"][0]["category_id"] == "c-gift-stored"


def test_listing_a_level_1_category_includes_its_level_3_products(store):
    assert set(ids(store, category_id="c-fruit")) == FRUIT
    assert set(ids(store, category_id="c-fruit-imported")) == {"p-cherry", "p-durian"}
    assert ids(store, category_id="c-apple") == ["p-fuji"]
    assert set(ids(store)) == EVERYTHING


def test_an_unknown_category_lists_nothing(store):
    assert ids(store, category_id="c-nope") == []


SEARCHES = [
    ("苹果", {"p-fuji"}), ("车厘", {"p-cherry"}), ("车厘子", {"p-cherry"}), ("樱桃", {"p-cherry"}),
    ("红富士苹果", {"p-fuji"}), ("橙", {"p-navel"}), ("JJ", {"p-cherry"}), ("ｊｊ级", {"p-cherry"}),
    ("礼品卡", {"p-giftcard"}), ("智利苹果", set()), ("梨", set()), ("?!", set()),
]


def test_keyword_search_in_chinese_and_ascii(store):
    for q, found in SEARCHES:
        assert set(ids(store, q=q)) == found, q


def test_search_within_a_category_and_a_price_range(store):
    assert ids(store, q="果", category_id="c-fruit-imported") == []
    assert set(ids(store, q="果")) == {"p-fuji", "p-giftcard"}  # 苹果, 鲜果园
    assert ids(store, q="果", category_id="c-fruit") == ["p-fuji"]
    assert ids(store, q="果", max_price_fen=5000, sort="sales") == ["p-fuji"]


def test_a_price_range_keeps_only_products_whose_cheapest_sku_is_in_it(store):
    for sort in ("newest", "sales", "price_asc", "price_desc"):
        found = set(ids(store, min_price_fen=3990, max_price_fen=12800, sort=sort))
        assert found == {"p-fuji", "p-giftcard", "p-cherry"}, sort
        assert set(ids(store, min_price_fen=12801, sort=sort)) == {"p-durian"}, sort
        assert set(ids(store, max_price_fen=2990, sort=sort)) == {"p-navel"}, sort
        assert set(ids(store, category_id="c-fruit-imported", max_price_fen=15000, sort=sort)) == {"p-cherry"}, sort


def test_each_sort_order_is_really_sorted(store):
    asc = products(store, sort="price_asc")["items"]
    assert [i["min_price_fen"] for i in asc] == sorted(PRICES.values())
    desc = products(store, sort="price_desc")["items"]
    assert [i["min_price_fen"] for i in desc] == sorted(PRICES.values(), reverse=True)
    sales = [i["sales_count"] for i in products(store, sort="sales")["items"]]
    assert sales == sorted(sales, reverse=True) and len(set(sales)) == 5
    newest = ids(store, sort="newest")
    assert newest == ["p-giftcard", "p-durian", "p-cherry", "p-navel", "p-fuji"]  # seeded in file order
    assert ids(store) == newest  # newest is the default


PAGED_QUERIES = [
    {}, {"sort": "sales"}, {"sort": "price_asc"}, {"sort": "price_desc"}, {"category_id": "c-fruit"},
    {"sort": "price_desc", "min_price_fen": 3000, "max_price_fen": 20000}, {"sort": "newest", "min_price_fen": 3000},
    {"q": "果"},
]


def test_cursor_pagination_walks_all_results_exactly_once(store):
    for params in PAGED_QUERIES:
        every = ids(store, **params, limit=50)
        walked = walk(store, **params, limit=2)
        assert walked == every and len(set(walked)) == len(walked), params
    assert sorted(walk(store, limit=1)) == sorted(EVERYTHING)


def test_a_full_last_page_has_no_cursor(store):
    assert products(store, limit=5)["next_cursor"] is None
    assert products(store, limit=4)["next_cursor"] is not None


BAD_QUERIES = [
    ("sort=cheapest", "sort"), ("limit=0", "limit"), ("limit=51", "limit"), ("limit=ten", "limit"),
    ("min_price_fen=-1", "min_price_fen"), ("max_price_fen=1.5", "max_price_fen"), ("colour=red", "colour"),
    ("min_price_fen=500&max_price_fen=100", "body"),
]


def test_bad_sort_limit_or_price_is_a_400_envelope(store):
    for query, field in BAD_QUERIES:
        status, body, _ = call(store, "GET", f"/v1/products?{query}")
        assert status == 400, query
        assert_envelope(body, "validation_error")
        assert body["Details"][0]["field"] == field, query


def test_a_bad_cursor_is_400_invalid_cursor_never_500(store):
    for cursor in ("garbage", "AAAA", "%%%", "eyJmYWNldCI6ImFsbCJ9", "x" * 3000):
        for params in ({}, {"q": "苹果"}, {"q": "!!"}, {"sort": "price_asc", "min_price_fen": 1}):
            status, body, _ = call(store, "GET", "/v1/products?" + urlencode({**params, "cursor": cursor}))
            assert status == 400, (cursor, params)
            assert_envelope(body, "validation_error" if len(cursor) > 2048 else "invalid_cursor")


def test_a_cursor_from_another_query_is_400(store):
    cursor = products(store, limit=2, sort="sales")["next_cursor"]
    for other in ({"sort": "price_asc"}, {"sort": "sales", "category_id": "c-fruit"}, {"sort": "sales", "q": "果"}):
        status, body, _ = call(store, "GET", "/v1/products?" + urlencode({**other, "cursor": cursor}))
        assert status == 400
        assert_envelope(body, "invalid_cursor")


def test_product_detail_shows_each_skus_stock_status(store):
    SkuRecord("sku-fuji-10").update(actions=[SkuRecord.available.set(0), SkuRecord.stock_in.set(0)])
    status, body, _ = call(store, "GET", "/v1/products/p-cherry")
    assert status == 200
    skus = {sku["sku_id"]: sku for sku in body["skus"]}
    assert skus["sku-cherry-2kg"]["stock_status"] == "low" and skus["sku-cherry-2kg"]["available"] == 4
    assert skus["sku-cherry-1kg"]["stock_status"] == "in_stock"
    assert set(skus["sku-cherry-1kg"]) == {"sku_id", "specs", "price_fen", "market_price_fen", "stock_status",
                                           "available", "on_sale"}
    _, fuji, _ = call(store, "GET", "/v1/products/p-fuji")
    statuses = {sku["sku_id"]: sku["stock_status"] for sku in fuji["skus"]}
    assert statuses == {"sku-fuji-5": "in_stock", "sku-fuji-10": "sold_out"}
    assert [sku["sku_id"] for sku in fuji["skus"]] == ["sku-fuji-5", "sku-fuji-10"]  # display order


def test_the_product_page_carries_video_and_virtual_flag(store):
    _, cherry, _ = call(store, "GET", "/v1/products/p-cherry")
    assert cherry["video_url"].startswith("https://") and cherry["virtual"] is False
    assert cherry["category_path"] == ["c-fruit", "c-fruit-imported", "c-cherry"]
    _, card, _ = call(store, "GET", "/v1/products/p-giftcard")
    assert card["virtual"] is True


def test_an_unknown_product_is_404(store):
    status, body, _ = call(store, "GET", "/v1/products/p-nope")
    assert status == 404
    assert_envelope(body, "product_not_found")


def test_pickup_stores_are_listed_in_display_order_and_paged(store):
    status, body, _ = call(store, "GET", "/v1/stores")
    assert status == 200 and body["next_cursor"] is None
    assert [s["store_id"] for s in body["items"]] == ["store-xuhui", "store-jingan", "store-pudong"]
    assert {"store_id", "name", "address", "hours"} <= set(body["items"][0])
    _, first, _ = call(store, "GET", "/v1/stores?limit=2")
    _, rest, _ = call(store, "GET", "/v1/stores?" + urlencode({"limit": 2, "cursor": first["next_cursor"]}))
    assert [s["store_id"] for s in first["items"] + rest["items"]] == [s["store_id"] for s in body["items"]]
    assert rest["next_cursor"] is None
    status, body, _ = call(store, "GET", "/v1/stores?cursor=bogus")
    assert status == 400
    assert_envelope(body, "invalid_cursor")


def test_catalog_reads_need_no_token(store):
    for path in ("/v1/categories", "/v1/products", "/v1/products/p-fuji", "/v1/stores"):
        assert call(store, "GET", path)[0] == 200, path


def test_list_and_search_cost_one_query_and_never_a_scan(store):
    from bench.capacity import CapacityMeter
    from chalicelib.storage import schema

    requests = [{}, {"category_id": "c-fruit"}, {"q": "车厘子"}, {"q": "JJ", "category_id": "c-fruit"},
                {"sort": "price_asc", "min_price_fen": 3000, "max_price_fen": 20000},
                {"sort": "sales", "max_price_fen": 5000}, {"sort": "price_desc", "limit": 2}]
    with CapacityMeter(keep_records=False) as meter:
        meter.attach_models(schema.ALL_MODELS)
        for params in requests:
            meter.reset()
            products(store, **params)
            calls = {name: op.calls for name, op in meter.snapshot().operations.items()}
            # a category filter also reads the category (is it hidden from buyers?): one GetItem
            assert calls == ({"GetItem": 1, "Query": 1} if "category_id" in params else {"Query": 1}), params
        meter.reset()
        assert call(store, "GET", "/v1/products/p-cherry")[0] == 200
        calls = {name: op.calls for name, op in meter.snapshot().operations.items()}
        assert calls == {"GetItem": 1, "BatchGetItem": 1}
        assert meter.snapshot().unmetered in (0, None)
