"""Tables `categories`, `products` and `skus`: the catalog (SPU/SKU) and each SKU's stock counters.

Stock counters live on the SKU item (API.md, "Stock counters"), so reserving stock and putting
an order can be one TransactWrite: at all times
`stock_in == available + allocated + reserved + sold`.
"""
from __future__ import annotations

from datetime import datetime

from pynamodb.attributes import (BooleanAttribute, ListAttribute, MapAttribute, NumberAttribute,
                                 UnicodeAttribute, UTCDateTimeAttribute)
from pynamodb.models import Model

from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name


class CategoryRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("categories")

    category_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    parent_id = UnicodeAttribute(null=True)
    level = NumberAttribute()  # 1, 2 or 3
    sort_order = NumberAttribute(default=0)


class ProductRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("products")

    product_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    category_id = UnicodeAttribute()
    category_path = ListAttribute(of=UnicodeAttribute, default=list)  # ancestors, root first, self last
    description = UnicodeAttribute(null=True)
    images = ListAttribute(of=UnicodeAttribute, default=list)
    keywords = ListAttribute(of=UnicodeAttribute, default=list)
    virtual = BooleanAttribute(default=False)  # no shipping (gift cards, vouchers)
    on_sale = BooleanAttribute(default=True)
    sales_count = NumberAttribute(default=0)
    created_at = UTCDateTimeAttribute()


class SkuRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("skus")

    sku_id = UnicodeAttribute(hash_key=True)
    product_id = UnicodeAttribute()
    specs = MapAttribute(default=dict)  # e.g. {"weight": "5斤"}
    price_fen = NumberAttribute()
    market_price_fen = NumberAttribute(null=True)
    low_stock_threshold = NumberAttribute(default=0)
    on_sale = BooleanAttribute(default=True)
    available = NumberAttribute(default=0)
    allocated = NumberAttribute(default=0)
    reserved = NumberAttribute(default=0)
    sold = NumberAttribute(default=0)
    stock_in = NumberAttribute(default=0)


def create_category(category_id: str, name: str, parent_id: str | None, level: int, sort_order: int = 0) -> None:
    record = CategoryRecord(category_id, name=name, parent_id=parent_id, level=level, sort_order=sort_order)
    with condition_failure_as(ConditionFailed):
        record.save(condition=CategoryRecord.category_id.does_not_exist())


def create_product(product_id: str, *, name: str, category_path: list[str], description: str | None,
                   images: list[str], keywords: list[str], virtual: bool, now: datetime) -> None:
    record = ProductRecord(product_id, name=name, category_id=category_path[-1], category_path=category_path,
                           description=description, images=images, keywords=keywords, virtual=virtual,
                           on_sale=True, sales_count=0, created_at=now)
    with condition_failure_as(ConditionFailed):
        record.save(condition=ProductRecord.product_id.does_not_exist())


def create_sku(sku_id: str, *, product_id: str, specs: dict[str, str], price_fen: int, stock: int,
               low_stock_threshold: int = 0, market_price_fen: int | None = None) -> None:
    """A new SKU starts with all its stock available: stock_in == available == stock."""
    record = SkuRecord(sku_id, product_id=product_id, specs=specs, price_fen=price_fen,
                       market_price_fen=market_price_fen, low_stock_threshold=low_stock_threshold,
                       available=stock, allocated=0, reserved=0, sold=0, stock_in=stock)
    with condition_failure_as(ConditionFailed):
        record.save(condition=SkuRecord.sku_id.does_not_exist())

