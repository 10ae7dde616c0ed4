"""Catalog storage on moto: every conditional write's failure path, and that the listing items
always agree with the product they come from."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.domain import catalog as rules
from chalicelib.storage import catalog, categories, listings, products, skus, stores
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.listings import ListingRecord
from chalicelib.storage.products import Product, ProductRecord
from chalicelib.storage.skus import NewSku, SkuRecord

NOW = clock.now()


def assert_listing_agrees(product_id: str) -> None:
    """The listing items of a product are exactly those its current state calls for."""
    product = products.get_product(product_id, consistent=True)
    expected = {record.facet: record.serialize() for record in listings.listing_records(product)}
    stored = {item.facet: item.serialize() for item in ListingRecord.scan(ListingRecord.product_id == product_id)}
    assert stored == expected
    assert set(product.listed_facets) == set(expected)


def _categories() -> None:
    categories.create_category("c1", "水果", None, 1)
    categories.create_category("c2", "国产水果", "c1", 2)
    categories.create_category("c3", "苹果", "c2", 3)
    categories.create_category("c4", "梨", "c2", 3)


def _product(product_id: str = "p1", price_fen: int = 3990, sku_ids: tuple[str, ...] = ("s1",)) -> Product:
    _categories()
    product = Product(product_id=product_id, name="烟台红富士苹果", category_path=("c1", "c2", "c3"),
                      description=None, images=(), video_url=None, keywords=("苹果",), virtual=False, on_sale=True,
                      sales_count=0, created_at=NOW)
    new = [NewSku(sku_id, {"重量": "5斤"}, price_fen + i, stock=10) for i, sku_id in enumerate(sku_ids)]
    return catalog.create_product_with_skus(product, new, NOW)


def test_a_category_id_cannot_be_created_twice(aws):
    categories.create_category("c1", "水果", None, 1)
    with pytest.raises(ConditionFailed):
        categories.create_category("c1", "蔬菜", None, 1)
    assert categories.get_category("c1").name == "水果"


def test_a_category_under_a_missing_parent_is_refused(aws):
    with pytest.raises(categories.CategoryMissing):
        categories.create_category("c9", "x", "c-missing", 2)
    with pytest.raises(categories.CategoryMissing):
        categories.get_category("c9")


def test_a_category_knows_its_path_to_the_root(aws):
    _categories()
    assert categories.get_category("c3").path == ("c1", "c2", "c3")


def test_a_product_and_its_skus_are_created_with_their_listings(aws):
    _product(sku_ids=("s1", "s2"))
    assert_listing_agrees("p1")
    assert {"all", "cat#c1", "cat#c2", "cat#c3", "kw#苹果"} <= set(products.get_product("p1").listed_facets)
    assert [sku.stock_in for sku in skus.get_skus(["s1", "s2"])] == [10, 10]


def test_creating_a_product_with_an_existing_sku_id_writes_nothing(aws):
    _product()
    product = Product(product_id="p2", name="梨", category_path=("c1",), description=None, images=(), video_url=None,
                      keywords=(), virtual=False, on_sale=True, sales_count=0, created_at=NOW)
    with pytest.raises(ConditionFailed):
        catalog.create_product_with_skus(product, [NewSku("s9", {}, 100, 1), NewSku("s1", {}, 100, 1)], NOW)
    with pytest.raises(products.ProductMissing):
        products.get_product("p2")
    with pytest.raises(skus.SkuMissing):
        skus.get_sku("s9")
    assert ListingRecord.count("kw#梨") == 0
    assert skus.get_sku("s1").product_id == "p1"


def test_a_product_id_cannot_be_created_twice(aws):
    _product()
    with pytest.raises(ConditionFailed):
        catalog.create_product("p1", name="x", category_path=["c1"], description=None, images=[], keywords=[],
                               virtual=False, now=NOW)
    with pytest.raises(ConditionFailed):
        catalog.create_product_with_skus(products.get_product("p1"), [NewSku("s5", {}, 1, 1)], NOW)
    assert products.get_product("p1").name == "烟台红富士苹果"
    with pytest.raises(skus.SkuMissing):
        skus.get_sku("s5")


def test_adding_an_existing_sku_or_a_sku_to_a_missing_product_fails(aws):
    _product()
    with pytest.raises(ConditionFailed):
        catalog.create_sku("s1", product_id="p1", specs={}, price_fen=1, stock=1)
    assert skus.get_sku("s1").price_fen == 3990
    SkuRecord("s-orphan", product_id="p-x", price_fen=1).save()  # exists, but not in the product's list
    with pytest.raises(ConditionFailed):
        catalog.create_sku("s-orphan", product_id="p1", specs={}, price_fen=1, stock=1)
    assert [entry.sku_id for entry in products.get_product("p1").skus] == ["s1"]
    with pytest.raises(products.ProductMissing):
        catalog.create_sku("s2", product_id="p-missing", specs={}, price_fen=1, stock=1)
    with pytest.raises(skus.SkuMissing):
        skus.get_sku("s2")
    assert_listing_agrees("p1")


def test_updating_a_missing_product_or_sku_fails_and_writes_nothing(aws):
    _product()
    with pytest.raises(products.ProductMissing):
        catalog.update_product("p-missing", {"name": "x"}, NOW)
    with pytest.raises(skus.SkuMissing):
        catalog.update_sku("s-missing", {"price_fen": 1}, NOW)
    with pytest.raises(skus.SkuMissing):
        catalog.update_sku("s-missing", {"specs": {"a": "b"}}, NOW)
    with pytest.raises(skus.SkuMissing):  # a SKU of another product
        skus.update_sku_fields("s1", "p-other", {"low_stock_threshold": 1})
    assert ProductRecord.count() == 1 and SkuRecord.count() == 1
    assert skus.get_sku("s1").low_stock_threshold == 0


def test_a_sku_that_vanishes_mid_update_fails_the_whole_transaction(aws, monkeypatch):
    _product()
    real_get_sku = catalog.get_sku
    monkeypatch.setattr(catalog, "get_sku", lambda sku_id, consistent=False: real_get_sku("s1", consistent))
    with pytest.raises(skus.SkuMissing):  # the SKU read is s1's, but the transaction updates s-gone
        catalog.update_sku("s-gone", {"price_fen": 1}, NOW)
    assert products.get_product("p1").version == 1 and products.get_product("p1").skus[0].price_fen == 3990
    assert_listing_agrees("p1")


def test_a_write_based_on_a_stale_read_is_retried_on_the_fresh_product(aws, monkeypatch):
    _product()
    real_get = catalog.get_product
    stale = real_get("p1")
    catalog.update_product("p1", {"name": "新名字"}, NOW)  # someone else's write after our read
    reads = []

    def first_read_stale(product_id: str, consistent: bool = False) -> Product:
        reads.append(product_id)
        return stale if len(reads) == 1 else real_get(product_id, consistent)

    monkeypatch.setattr(catalog, "get_product", first_read_stale)
    catalog.update_product("p1", {"keywords": ("新品",)}, NOW)
    product = real_get("p1")
    assert len(reads) == 2 and product.name == "新名字" and product.keywords == ("新品",) and product.version == 3
    assert_listing_agrees("p1")


def test_endless_concurrent_writes_give_up_with_concurrent_update(aws, monkeypatch):
    _product()
    stale = catalog.get_product("p1")
    catalog.update_product("p1", {"name": "别人改的"}, NOW)
    monkeypatch.setattr(catalog, "get_product", lambda product_id, consistent=False: stale)
    monkeypatch.setattr(catalog, "MAX_ATTEMPTS", 3)
    with pytest.raises(catalog.ConcurrentUpdate):
        catalog.update_product("p1", {"name": "我的"}, NOW)
    monkeypatch.undo()
    assert products.get_product("p1").name == "别人改的"
    assert_listing_agrees("p1")


def test_price_category_name_and_on_sale_changes_rewrite_the_listing(aws):
    _product(sku_ids=("s1", "s2"))
    catalog.update_sku("s1", {"price_fen": 9999}, NOW)
    assert products.get_product("p1").cheapest_sku.sku_id == "s2"
    assert_listing_agrees("p1")
    catalog.update_product("p1", {"category_path": ("c1", "c2", "c4"), "name": "库尔勒香梨", "keywords": ()}, NOW)
    assert ListingRecord.count("cat#c3") == 0 and ListingRecord.count("kw#苹果") == 0
    assert ListingRecord.count("cat#c4") == 1 and ListingRecord.count("kw#香梨") == 1
    assert_listing_agrees("p1")
    catalog.update_product("p1", {"on_sale": False}, NOW)
    assert ListingRecord.count() == 0 and products.get_product("p1").listed_facets == ()
    catalog.update_product("p1", {"on_sale": True}, NOW)
    assert_listing_agrees("p1")


def test_sales_re_key_the_sales_order(aws):
    _product()
    catalog.add_sales("p1", 7, NOW)
    catalog.add_sales("p1", 5, NOW + timedelta(seconds=1))
    assert products.get_product("p1").sales_count == 12
    assert {item.sales_key for item in ListingRecord.scan()} == {rules.sales_key(12, "p1")}
    assert_listing_agrees("p1")


def test_a_store_id_cannot_be_created_twice(aws):
    stores.create_store("st1", name="徐汇店", address="上海", hours="9-21")
    with pytest.raises(ConditionFailed):
        stores.create_store("st1", name="别的店", address="北京", hours="0-24")
    assert stores.get_store("st1").name == "徐汇店" and stores.get_store("st-missing") is None
