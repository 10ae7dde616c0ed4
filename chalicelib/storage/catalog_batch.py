"""Batch reads of SKUs and their products, for checkout and the cart (one BatchGet per table,
or one BatchGet for both when the caller already knows each SKU's product)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import GetError

from chalicelib.storage.catalog import ProductRecord, SkuRecord

BATCH_GET_MAX_KEYS = 100  # DynamoDB's limit per BatchGetItem
UNPROCESSED_RETRIES = 5  # then the read fails as transient (the client gets 503 + Retry-After)
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
    wanted_skus = sorted(set(sku_ids))
    if not wanted_skus:
        return {}
    given = product_of or {}
    hinted = sorted({product_id for product_id in (given.get(sku_id) or _known_product_of.get(sku_id)
                                                   for sku_id in wanted_skus) if product_id})
    found_skus, found_products = _batch_get_both(wanted_skus, hinted)
    _remember(found_skus)
    missing = sorted({sku.product_id for sku in found_skus} - {product.product_id for product in found_products})
    if missing:
        found_products += _batch_get_both([], missing)[1]
    return _sellable(found_skus, {product.product_id: product for product in found_products})


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
            product_on_sale=bool(product.on_sale), virtual=bool(product.virtual))
    return found


def _batch_get_both(sku_ids: list[str], product_ids: list[str]) -> tuple[list[SkuRecord], list[ProductRecord]]:
    """SKUs and products by id, both tables in the same BatchGetItem (pages of 100 keys;
    unprocessed keys retried with a short backoff, a bounded number of times)."""
    sku_table, product_table = SkuRecord.Meta.table_name, ProductRecord.Meta.table_name
    keys = [(sku_table, {SkuRecord.sku_id.attr_name: {"S": sku_id}}) for sku_id in sku_ids]
    keys += [(product_table, {ProductRecord.product_id.attr_name: {"S": product_id}}) for product_id in product_ids]
    connection = SkuRecord._get_connection().connection  # any model's: a BatchGetItem names its tables
    items: dict[str, list[dict[str, Any]]] = {sku_table: [], product_table: []}
    for start in range(0, len(keys), BATCH_GET_MAX_KEYS):
        request: dict[str, Any] = {}
        for table, key in keys[start:start + BATCH_GET_MAX_KEYS]:
            request.setdefault(table, {"Keys": []})["Keys"].append(key)
        for attempt in range(UNPROCESSED_RETRIES + 1):
            try:
                answer = connection.dispatch("BatchGetItem", {"RequestItems": request})
            except (BotoCoreError, ClientError) as error:  # as PynamoDB's own batch_get raises it
                raise GetError("Failed to batch get items", error) from error
            for table, table_items in answer.get("Responses", {}).items():
                items.setdefault(table, []).extend(table_items)
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
            if attempt < UNPROCESSED_RETRIES:
                time.sleep(0.025 * 2 ** attempt)
        if request:
            raise GetError("BatchGetItem left keys unprocessed after retries")
    return ([SkuRecord.from_raw_data(item) for item in items[sku_table]],
            [ProductRecord.from_raw_data(item) for item in items[product_table]])
