"""The listing index under real concurrency, on AWS's DynamoDB Local engine: however admin edits
interleave, the listing items end up agreeing with the product they come from."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib import clock
from chalicelib.schemas.catalog import ProductListQuery, ProductPatch, SkuPatch
from chalicelib.services import catalog as catalog_reads
from chalicelib.services import catalog_admin
from chalicelib.storage import catalog, categories, products, skus
from chalicelib.storage.listings import ListingRecord
from chalicelib.storage.products import Product
from chalicelib.storage.skus import NewSku
from local.seed import seed_demo_store
from tests.storage.test_catalog_storage import assert_listing_agrees

pytestmark = pytest.mark.dynamodb_local
THREADS = 10


def _product() -> None:
    categories.create_category("c1", "水果", None, 1)
    categories.create_category("c2", "国产水果", "c1", 2)
    for category_id, name in (("c3", "苹果"), ("c4", "梨"), ("c5", "桃")):
        categories.create_category(category_id, name, "c2", 3)
    product = Product(product_id="p1", name="烟台红富士苹果", category_path=("c1", "c2", "c3"), description=None,
                      images=(), video_url=None, keywords=("苹果",), virtual=False, on_sale=True, sales_count=0,
                      created_at=clock.now())
    catalog.create_product_with_skus(product, [NewSku(f"s{i}", {"规格": str(i)}, 1000 + i, 10) for i in range(3)],
                                     clock.now())


def _all_at_once(jobs: list) -> list:
    barrier = threading.Barrier(len(jobs))

    def run(job):
        barrier.wait()
        return job()

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(run, jobs))


def test_concurrent_price_changes_of_one_product_leave_its_listing_consistent(dynamodb_local):
    _product()
    prices = [500 + 37 * n for n in range(THREADS)]
    _all_at_once([lambda price=price: catalog_admin.update_sku("s0", SkuPatch(price_fen=price)) for price in prices])
    product = products.get_product("p1", consistent=True)
    final = skus.get_sku("s0", consistent=True).price_fen
    assert final in prices and product.version == 1 + THREADS  # every change committed, one at a time
    assert next(entry for entry in product.skus if entry.sku_id == "s0").price_fen == final
    assert_listing_agrees("p1")
    assert {item.min_price_fen for item in ListingRecord.scan()} == {min(final, 1001)}


def test_concurrent_moves_renames_and_price_changes_leave_no_stale_listing(dynamodb_local):
    _product()
    jobs = [lambda c=c: catalog_admin.update_product("p1", ProductPatch(category_id=c)) for c in ("c3", "c4", "c5")]
    jobs += [lambda n=n: catalog_admin.update_product("p1", ProductPatch(name=n, keywords=[n[-2:]]))
             for n in ("库尔勒香梨", "阳山水蜜桃", "阿克苏苹果")]
    jobs += [lambda i=i: catalog_admin.update_sku(f"s{i % 3}", SkuPatch(price_fen=2000 + i)) for i in range(THREADS - 6)]
    _all_at_once(jobs)
    product = products.get_product("p1", consistent=True)
    assert product.version == 1 + THREADS
    assert_listing_agrees("p1")
    facets = {item.facet for item in ListingRecord.scan()}
    assert {f"cat#{c}" for c in ("c3", "c4", "c5")} & facets == {f"cat#{product.category_id}"}


def test_lists_sorts_and_cursors_work_on_the_real_engine(dynamodb_local):
    seed_demo_store()
    for sort in ("newest", "sales", "price_asc", "price_desc"):
        for filters in ({}, {"category_id": "c-fruit"}, {"min_price_fen": 3000, "max_price_fen": 20000}, {"q": "果"}):
            everything = catalog_reads.list_products(ProductListQuery(sort=sort, limit=50, **filters))
            walked, cursor = [], None
            while True:
                page = catalog_reads.list_products(ProductListQuery(sort=sort, limit=2, cursor=cursor, **filters))
                walked += [item.product_id for item in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert walked == [item.product_id for item in everything.items], (sort, filters)
    prices = [item.min_price_fen for item in catalog_reads.list_products(ProductListQuery(sort="price_asc")).items]
    assert prices == sorted(prices) and len(prices) == 5
