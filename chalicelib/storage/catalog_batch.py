"""Batch reads of SKUs and their products, for checkout and the cart (one BatchGet per table,
or one BatchGet for both when the caller already knows each SKU's product)."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterable, Mapping

from chalicelib.storage.batch_get import Key, batch_get_raw, table_key
from chalicelib.storage.catalog import ProductRecord, SkuRecord

KNOWN_PRODUCTS_MAX = 20_000  # SKU -> product pairs remembered by a warm process (~2 MB at most)

# A SKU never changes product (ids are random and never reused; no write sets product_id), so
# what a read once found stays true for the life of the process. Used only as a hint: a wrong
# or stale entry costs one more BatchGetItem, never a wrong answer.
_known_product_of: dict[str, str] = {}
_known_lock = threading.Lock()


@dataclass(frozen=True)
class SellableSku:
    """A SKU with what checkout needs of its product, as stored now."""
    sku_id: str
    product_id: str
    name: str
    specs: dict[str, str]
    price_fen: int
    available: int
    low_stock_threshold: int
    sku_on_sale: bool
    product_on_sale: bool
    virtual: bool
    category_path: tuple[str, ...] = ()
    low_stock_alerted: bool = False  # this SKU's low-stock alert is raised already (storage/alerts.py)

    @property
    def on_sale(self) -> bool:
        return self.sku_on_sale and self.product_on_sale


def get_sellable_skus(sku_ids: list[str]) -> dict[str, SellableSku]:
    """The SKUs that exist among `sku_ids`, by id (missing ids are simply absent)."""
    skus = list(SkuRecord.batch_get(sorted(set(sku_ids)))) if sku_ids else []
    product_ids = sorted({sku.product_id for sku in skus})
    products = {product.product_id: product for product in ProductRecord.batch_get(product_ids)} if product_ids else {}
    return _sellable(skus, products)


def get_sellable_skus_with_products(sku_ids: list[str],
                                    product_of: Mapping[str, str | None] | None = None) -> dict[str, SellableSku]:
    """What get_sellable_skus answers, in ONE BatchGetItem over both tables when the product of
    every SKU is known beforehand: from `product_of` (sku_id -> product_id, e.g. as stored on
    cart lines) or from the SKU -> product pairs this process has already read. The SKUs and
    those products come in the same call; a product not known (or known wrongly: the SKU's own
    product_id wins) is fetched in a second call. Eventually consistent, like get_sellable_skus."""
    return get_sellable_skus_and(sku_ids, product_of)[0]


def get_sellable_skus_and(sku_ids: list[str], product_of: Mapping[str, str | None] | None = None,
                          extra: Iterable[Key] = ()) -> tuple[dict[str, SellableSku], dict[str, list[dict]]]:
    """get_sellable_skus_with_products, plus the `extra` items of other tables (e.g. the
    checkout's address and coupon wallet) in the same BatchGetItem, returned raw by table."""
    wanted_skus = sorted(set(sku_ids))
    given = product_of or {}
    hinted = sorted({product_id for product_id in (given.get(sku_id) or _known_product_of.get(sku_id)
                                                   for sku_id in wanted_skus) if product_id})
    found_skus, found_products, extras = _batch_get_both(wanted_skus, hinted, list(extra))
    _remember(found_skus)
    missing = sorted({sku.product_id for sku in found_skus} - {product.product_id for product in found_products})
    if missing:
        found_products += _batch_get_both([], missing)[1]
    return _sellable(found_skus, {product.product_id: product for product in found_products}), extras


def forget_known_products() -> None:
    """Drop the remembered SKU -> product pairs (tests that count calls start from a cold process)."""
    with _known_lock:
        _known_product_of.clear()


def _remember(skus: list[SkuRecord]) -> None:
    with _known_lock:
        for sku in skus:
            if sku.sku_id not in _known_product_of and len(_known_product_of) >= KNOWN_PRODUCTS_MAX:
                del _known_product_of[next(iter(_known_product_of))]  # the oldest pair
            _known_product_of[sku.sku_id] = sku.product_id


def _sellable(skus: Iterable[SkuRecord], products: Mapping[str, ProductRecord]) -> dict[str, SellableSku]:
    found = {}
    for sku in skus:
        product = products.get(sku.product_id)
        if product is None:
            continue
        found[sku.sku_id] = SellableSku(
            sku_id=sku.sku_id, product_id=sku.product_id, name=product.name,
            specs={str(k): str(v) for k, v in (sku.specs.as_dict() if sku.specs else {}).items()},
            price_fen=int(sku.price_fen), available=int(sku.available),
            low_stock_threshold=int(sku.low_stock_threshold or 0), sku_on_sale=bool(sku.on_sale),
            product_on_sale=bool(product.on_sale) and sku.product_on_sale is not False,
            virtual=bool(product.virtual), category_path=tuple(product.category_path or ()),
            low_stock_alerted=bool(sku.low_stock_alerted))
    return found


def _batch_get_both(sku_ids: list[str], product_ids: list[str],
                    extra: list[Key] = ()) -> tuple[list[SkuRecord], list[ProductRecord], dict[str, list]]:
    """SKUs and products by id, with any `extra` items of other tables, in one BatchGetItem
    (storage/batch_get.py); the extra items come back raw, by table."""
    keys = [table_key(SkuRecord, sku_id) for sku_id in sku_ids]
    keys += [table_key(ProductRecord, product_id) for product_id in product_ids]
    items = batch_get_raw([*keys, *extra], SkuRecord._get_connection().connection)
    sku_items = items.pop(SkuRecord.Meta.table_name, [])
    product_items = items.pop(ProductRecord.Meta.table_name, [])
    return ([SkuRecord.from_raw_data(item) for item in sku_items],
            [ProductRecord.from_raw_data(item) for item in product_items], items)
