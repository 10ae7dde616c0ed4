"""Table `products`: one item per product (SPU).

Besides what the merchant edits, a product keeps what its listing items are derived from, so a
re-list reads one item: `skus` (each SKU's id, price, market price and on_sale, in display
order), and `listed_facets` (the listing partitions it is in now, to delete stale ones).
`version` goes up by one on every write that changes the listing: writers condition on the
version they read (optimistic concurrency, storage/catalog.py).

Index `by_category` (category_id, product_id), keys only: the merchant's product list by
category (off-sale products included) and a category move's re-path of its products.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pynamodb.attributes import (BooleanAttribute, ListAttribute, MapAttribute, NumberAttribute,
                                 UnicodeAttribute, UTCDateTimeAttribute)
from pynamodb.models import Model

from typing import Any

from chalicelib.storage.base import KeysOnlyIndex, TableMeta, table_name


class ByCategory(KeysOnlyIndex):
    class Meta(KeysOnlyIndex.Meta):
        index_name = "by_category"

    category_id = UnicodeAttribute(hash_key=True)
    product_id = UnicodeAttribute(range_key=True)


class SkuEntryAttribute(MapAttribute):
    sku_id = UnicodeAttribute()
    price_fen = NumberAttribute()
    market_price_fen = NumberAttribute(null=True)
    on_sale = BooleanAttribute(default=True)


class ProductRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("products")

    product_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    category_id = UnicodeAttribute()
    category_path = ListAttribute(of=UnicodeAttribute, default=list)  # ancestors, root first, self last
    description = UnicodeAttribute(null=True)
    images = ListAttribute(of=UnicodeAttribute, default=list)
    video_url = UnicodeAttribute(null=True)
    keywords = ListAttribute(of=UnicodeAttribute, default=list)
    virtual = BooleanAttribute(default=False)  # no shipping (gift cards, vouchers)
    on_sale = BooleanAttribute(default=True)
    sales_count = NumberAttribute(default=0)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute(null=True)
    skus = ListAttribute(of=SkuEntryAttribute, default=list)
    listed_facets = ListAttribute(of=UnicodeAttribute, default=list)
    version = NumberAttribute(default=0)

    by_category = ByCategory()


@dataclass(frozen=True)
class SkuEntry:
    """What a listing needs of one SKU."""
    sku_id: str
    price_fen: int
    market_price_fen: int | None
    on_sale: bool


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    category_path: tuple[str, ...]
    description: str | None
    images: tuple[str, ...]
    video_url: str | None
    keywords: tuple[str, ...]
    virtual: bool
    on_sale: bool
    sales_count: int
    created_at: datetime
    skus: tuple[SkuEntry, ...] = ()
    listed_facets: tuple[str, ...] = ()
    version: int = 0

    @property
    def category_id(self) -> str:
        return self.category_path[-1]

    @property
    def cheapest_sku(self) -> SkuEntry | None:
        """The on-sale SKU the listing shows ("from ¥39.90"), or None when none is on sale."""
        on_sale = [sku for sku in self.skus if sku.on_sale]
        return min(on_sale, key=lambda sku: sku.price_fen) if on_sale else None

    @property
    def is_listed(self) -> bool:
        """Shown in lists and search: on sale, with at least one SKU on sale."""
        return self.on_sale and self.cheapest_sku is not None


class ProductMissing(Exception):
    """No product with this id."""


def to_product(record: ProductRecord) -> Product:
    return Product(
        product_id=record.product_id, name=record.name,
        category_path=tuple(record.category_path or [record.category_id]),
        description=record.description, images=tuple(record.images or ()), video_url=record.video_url,
        keywords=tuple(record.keywords or ()), virtual=bool(record.virtual), on_sale=bool(record.on_sale),
        sales_count=int(record.sales_count or 0), created_at=record.created_at,
        skus=tuple(SkuEntry(entry.sku_id, int(entry.price_fen),
                            None if entry.market_price_fen is None else int(entry.market_price_fen),
                            bool(entry.on_sale)) for entry in record.skus or ()),
        listed_facets=tuple(record.listed_facets or ()), version=int(record.version or 0),
    )


def to_record(product: Product, updated_at: datetime | None = None) -> ProductRecord:
    return ProductRecord(
        product.product_id, name=product.name, category_id=product.category_id,
        category_path=list(product.category_path), description=product.description,
        images=list(product.images), video_url=product.video_url, keywords=list(product.keywords),
        virtual=product.virtual, on_sale=product.on_sale, sales_count=product.sales_count,
        created_at=product.created_at, updated_at=updated_at,
        skus=[SkuEntryAttribute(sku_id=sku.sku_id, price_fen=sku.price_fen, market_price_fen=sku.market_price_fen,
                                on_sale=sku.on_sale) for sku in product.skus],
        listed_facets=list(product.listed_facets), version=product.version,
    )


def get_product(product_id: str, consistent: bool = False) -> Product:
    """The product (ProductMissing if none). Writers read consistently: they condition on its version."""
    try:
        return to_product(ProductRecord.get(product_id, consistent_read=consistent))
    except ProductRecord.DoesNotExist:
        raise ProductMissing(product_id) from None


def update_actions(product: Product, now: datetime) -> list:
    """SET everything a product write may change (and the new version); REMOVE cleared optionals.
    An update, not a put, so attributes other code adds to the item survive."""
    record = to_record(product)
    actions = [ProductRecord.name.set(product.name), ProductRecord.category_id.set(product.category_id),
               ProductRecord.category_path.set(record.category_path), ProductRecord.images.set(record.images),
               ProductRecord.keywords.set(record.keywords), ProductRecord.on_sale.set(product.on_sale),
               ProductRecord.sales_count.set(product.sales_count), ProductRecord.skus.set(record.skus),
               ProductRecord.listed_facets.set(record.listed_facets), ProductRecord.version.set(product.version),
               ProductRecord.updated_at.set(now)]
    for attribute, value in ((ProductRecord.description, product.description),
                             (ProductRecord.video_url, product.video_url)):
        actions.append(attribute.set(value) if value is not None else attribute.remove())
    return actions


def version_is(version: int):
    """The condition "nobody wrote since I read version `version`" (items from before versions
    existed have no attribute: that is version 0)."""
    exists = ProductRecord.product_id.exists()
    if version == 0:
        return exists & (ProductRecord.version.does_not_exist() | (ProductRecord.version == 0))
    return exists & (ProductRecord.version == version)


def product_ids_in_category(category_id: str, limit: int | None = None, cursor: dict[str, Any] | None = None,
                            ) -> tuple[list[str], dict[str, Any] | None]:
    """Ids of the products whose own category is `category_id` (the keys-only index: callers
    read the products themselves)."""
    results = ProductRecord.by_category.query(category_id, limit=limit, last_evaluated_key=cursor)
    return [record.product_id for record in results], results.last_evaluated_key


def scan_products(limit: int, cursor: dict[str, Any] | None, on_sale: bool | None,
                  ) -> tuple[list[Product], dict[str, Any] | None]:
    """A page of every product (the merchant's unfiltered list: one Scan call of `limit` items;
    an on_sale filter may make the page short, the cursor still goes on)."""
    condition = (ProductRecord.on_sale == on_sale) if on_sale is not None else None
    results = ProductRecord.scan(filter_condition=condition, limit=limit, last_evaluated_key=cursor)
    page = [to_product(record) for record in results]
    return page, results.last_evaluated_key
