"""The demo store seeded by `make run` / `make tables`."""
from __future__ import annotations

from chalicelib.storage.catalog import CategoryRecord, ProductRecord, SkuRecord
from local.seed import seed_demo_store


def test_the_demo_store_has_three_category_levels_a_virtual_good_and_a_low_stock_sku(aws):
    seed_demo_store()
    levels = {category.level for category in CategoryRecord.scan()}
    assert levels == {1, 2, 3}
    assert any(product.virtual for product in ProductRecord.scan())
    skus = list(SkuRecord.scan())
    assert any(sku.available <= sku.low_stock_threshold for sku in skus)
    for sku in skus:  # every SKU starts with the stock invariant holding
        assert sku.stock_in == sku.available + sku.allocated + sku.reserved + sku.sold


def test_seeding_twice_adds_nothing(aws):
    seed_demo_store()
    counts = (CategoryRecord.count(), ProductRecord.count(), SkuRecord.count())
    assert "created 0 categories, 0 products, 0 SKUs" in seed_demo_store()[0]
    assert (CategoryRecord.count(), ProductRecord.count(), SkuRecord.count()) == counts


def test_the_demo_flash_sale_is_carved_once_however_often_the_store_is_seeded(aws):
    from chalicelib.storage.flash_sales import FlashSaleRecord
    from tests.storage.order_fixtures import counters

    seed_demo_store()
    seed_demo_store()
    assert [sale.sale_id for sale in FlashSaleRecord.scan()] == ["fs-demo-cherry"]
    assert counters("sku-cherry-1kg")["allocated"] == 20
