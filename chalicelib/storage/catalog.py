"""Catalog writes: a product, its SKUs and its listing items change together, in ONE TransactWrite.

Tables: `categories` (storage/categories.py), `products` (products.py), `skus` (skus.py, with
the stock counters of API.md), `product_listings` (listings.py). The record classes are
re-exported here, where other modules have always imported them from.

Every write that changes what a listing shows (create, price, on_sale, category, name,
keywords, sales count) reads the product consistently, derives its new listing items, and
commits product + SKU + listing puts + stale-listing deletes in one transaction conditioned on
the product's `version` being the one it read. A concurrent writer makes the condition fail;
the write is then re-read and retried, so the listing always agrees with the product. The
caps (50 SKUs, 3 category levels, 45 tokens) keep every such transaction within DynamoDB's
100 items, so there is no batch fallback that could leave a listing half-written.
"""
from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib import clock
from chalicelib.storage.base import ConditionFailed, condition_failure_as
from chalicelib.storage.categories import CategoryRecord, create_category
from chalicelib.storage.listings import ListingRecord, listed_facets, listing_key, listing_records
from chalicelib.storage.products import (Product, ProductMissing, ProductRecord, SkuEntry, get_product,
                                         to_record, update_actions, version_is)
from chalicelib.storage.skus import (NewSku, SkuMissing, SkuRecord, get_sku, new_sku_record,
                                     sku_belongs_to, sku_update_actions, update_sku_fields)

__all__ = ["CategoryRecord", "ProductRecord", "SkuRecord", "ListingRecord", "Product", "SkuEntry", "NewSku",
           "ProductMissing", "SkuMissing", "ConcurrentUpdate", "create_category", "create_product", "create_sku",
           "create_product_with_skus", "update_product", "update_sku", "add_sales", "update_product_sales",
           "add_sales_once", "SalesAlreadyCounted"]

MAX_SKUS = 50
MAX_TRANSACTION_ITEMS = 100
MAX_ATTEMPTS = 20
_KIND_ORDER = {"delete": 0, "save": 1, "update": 2}  # PynamoDB sends deletes, puts, then updates
LISTED_SKU_FIELDS = frozenset({"price_fen", "market_price_fen", "on_sale"})


class ConcurrentUpdate(Exception):
    """Other writers kept changing the product; gave up after MAX_ATTEMPTS."""


class _VersionChanged(Exception):
    """Someone wrote the product after we read it: read again and retry."""


@dataclass(frozen=True)
class _Write:
    kind: str  # "save", "update" or "delete"
    model: Model
    condition: Any = None
    actions: list | None = None
    on_failure: Exception | None = None  # raised when this item's condition fails


def _transact(writes: list[_Write]) -> None:
    writes = sorted(writes, key=lambda write: _KIND_ORDER[write.kind])  # reasons come back in this order
    if len(writes) > MAX_TRANSACTION_ITEMS:  # the caps above make this unreachable; fail loudly if not
        raise RuntimeError(f"a catalog write needs {len(writes)} transaction items")
    try:
        with TransactWrite(connection=ProductRecord._get_connection().connection) as transaction:
            for write in writes:
                if write.kind == "save":
                    transaction.save(write.model, condition=write.condition)
                elif write.kind == "update":
                    transaction.update(write.model, actions=write.actions, condition=write.condition)
                else:
                    transaction.delete(write.model, condition=write.condition)
    except TransactWriteError as error:
        reasons = error.cancellation_reasons or []
        failed = [write for write, reason in zip(writes, reasons)
                  if reason is not None and reason.code == "ConditionalCheckFailed"]
        for write in failed:  # a definite answer (SKU exists, SKU missing) beats a retry
            if write.on_failure is not None and not isinstance(write.on_failure, _VersionChanged):
                raise write.on_failure from None
        if failed or any(reason is not None and reason.code == "TransactionConflict" for reason in reasons):
            raise _VersionChanged() from None
        raise


def _listing_writes(old: Product, new: Product) -> list[_Write]:
    """Put every listing item of `new`; delete those of `old` that `new` no longer has."""
    stale = set(old.listed_facets) - set(new.listed_facets)
    return ([_Write("save", record) for record in listing_records(new)]
            + [_Write("delete", ListingRecord(facet, listing_key(old))) for facet in sorted(stale)])


def _change_product(product_id: str, change: Callable[[Product], tuple[Product, list[_Write]]],
                    now: datetime) -> Product:
    """Read, change, commit with the version condition; on a concurrent write, read again."""
    for attempt in range(MAX_ATTEMPTS):
        current = get_product(product_id, consistent=True)
        changed, extra_writes = change(current)
        new = dataclasses.replace(changed, version=current.version + 1)
        new = dataclasses.replace(new, listed_facets=tuple(listed_facets(new)))
        product_write = _Write("update", ProductRecord(product_id), condition=version_is(current.version),
                               actions=update_actions(new, now), on_failure=_VersionChanged())
        try:
            _transact([product_write, *extra_writes, *_listing_writes(current, new)])
            return new
        except _VersionChanged:
            time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 6)))  # jittered backoff, at most ~0.3 s
    raise ConcurrentUpdate(product_id)


# ----------------------------------------------------------------------------------- creates

def create_product(product_id: str, *, name: str, category_path: list[str], description: str | None,
                   images: list[str], keywords: list[str], virtual: bool, now: datetime,
                   video_url: str | None = None, sales_count: int = 0, on_sale: bool = True) -> Product:
    """A product without SKUs yet (listed once create_sku gives it one). ConditionFailed if the id exists."""
    product = Product(product_id=product_id, name=name, category_path=tuple(category_path), description=description,
                      images=tuple(images), video_url=video_url, keywords=tuple(keywords), virtual=virtual,
                      on_sale=on_sale, sales_count=sales_count, created_at=now)
    with condition_failure_as(ConditionFailed):
        to_record(product, updated_at=now).save(condition=ProductRecord.product_id.does_not_exist())
    return product


def create_sku(sku_id: str, *, product_id: str, specs: dict[str, str], price_fen: int, stock: int,
               low_stock_threshold: int = 0, market_price_fen: int | None = None, now: datetime | None = None) -> None:
    """Add a SKU to an existing product (ProductMissing if none) and re-list the product.
    A new SKU starts with all its stock available. ConditionFailed if the SKU id exists."""
    def add(product: Product) -> tuple[Product, list[_Write]]:
        if any(entry.sku_id == sku_id for entry in product.skus):
            raise ConditionFailed(sku_id)
        if len(product.skus) >= MAX_SKUS:
            raise ValueError(f"a product has at most {MAX_SKUS} SKUs")
        record = new_sku_record(sku_id, product_id=product_id, specs=specs, price_fen=price_fen, stock=stock,
                                low_stock_threshold=low_stock_threshold, market_price_fen=market_price_fen,
                                product_on_sale=product.on_sale)
        entry = SkuEntry(sku_id, price_fen, market_price_fen, True)
        write = _Write("save", record, condition=SkuRecord.sku_id.does_not_exist(), on_failure=ConditionFailed(sku_id))
        return dataclasses.replace(product, skus=(*product.skus, entry)), [write]

    _change_product(product_id, add, now or clock.now())


def create_product_with_skus(product: Product, skus: list[NewSku], now: datetime) -> Product:
    """A product, its SKUs (1-50) and its listing items, all or nothing. ConditionFailed if an id exists."""
    if not 1 <= len(skus) <= MAX_SKUS:
        raise ValueError(f"a product has 1 to {MAX_SKUS} SKUs")
    entries = tuple(SkuEntry(sku.sku_id, sku.price_fen, sku.market_price_fen, sku.on_sale) for sku in skus)
    product = dataclasses.replace(product, skus=entries, version=1)
    product = dataclasses.replace(product, listed_facets=tuple(listed_facets(product)))
    exists = ConditionFailed(product.product_id)
    writes = [_Write("save", to_record(product, updated_at=now), condition=ProductRecord.product_id.does_not_exist(),
                     on_failure=exists)]
    writes += [_Write("save", _sku_record(product, sku), condition=SkuRecord.sku_id.does_not_exist(),
                      on_failure=ConditionFailed(sku.sku_id)) for sku in skus]
    writes += [_Write("save", record) for record in listing_records(product)]
    try:
        _transact(writes)
    except _VersionChanged:  # a transaction conflict on brand-new ids: someone is creating the same ids
        raise exists from None
    return product


def _sku_record(product: Product, sku: NewSku) -> SkuRecord:
    return new_sku_record(sku.sku_id, product_id=product.product_id, specs=sku.specs, price_fen=sku.price_fen,
                          stock=sku.stock, low_stock_threshold=sku.low_stock_threshold,
                          market_price_fen=sku.market_price_fen, on_sale=sku.on_sale, product_on_sale=product.on_sale)


# ----------------------------------------------------------------------------------- updates

def update_product(product_id: str, changes: dict[str, Any], now: datetime) -> Product:
    """Change product fields (names as on Product; a category move passes `category_path`).

    A change of `on_sale` is copied onto every SKU of the product in the same transaction
    (SkuRecord.product_on_sale: what placing an order conditions on). It fits: a product has at
    most 50 SKUs, and an on_sale change either puts the listing items or deletes them, never
    both (at most 49), so product + SKUs + listings stay within 100 items."""
    def change(product: Product) -> tuple[Product, list[_Write]]:
        changed = dataclasses.replace(product, **changes)
        if changed.on_sale == product.on_sale:
            return changed, []
        return changed, [_Write("update", SkuRecord(entry.sku_id), condition=sku_belongs_to(product_id),
                                actions=[SkuRecord.product_on_sale.set(changed.on_sale)],
                                on_failure=SkuMissing(entry.sku_id)) for entry in product.skus]

    return _change_product(product_id, change, now)


def add_sales(product_id: str, quantity: int, now: datetime) -> Product:
    """Count units sold (payment calls this): re-keys the product's `sales_key` listings.
    Every call rewrites all the product's listing items, so callers should add up sales per
    product (e.g. per queue batch) rather than call it once per order line."""
    return update_product_sales(product_id, lambda count: count + quantity, now)


class SalesAlreadyCounted(Exception):
    """A marker of the batch exists: part of it was counted before (by a run that crashed or a
    concurrent one). Check the markers and send the rest again."""


def add_sales_once(product_id: str, marks: dict[str, int], now: datetime, keep_marks_until: datetime) -> Product:
    """Add sum(marks.values()) units (negative: units refunded) to the product's sales, and put
    each marker key in the same transaction on condition it is new: a batch counts at most once.
    Raises SalesAlreadyCounted when some marker exists (nothing is written then)."""
    from chalicelib.storage.idempotency import COMPLETED, IdempotencyRecord

    total = sum(marks.values())
    writes = [_Write("save", IdempotencyRecord(key, status=COMPLETED, lease_expires_at=now, expires_at=keep_marks_until),
                     condition=IdempotencyRecord.key.does_not_exist(), on_failure=SalesAlreadyCounted())
              for key in sorted(marks)]
    return _change_product(
        product_id,
        lambda product: (dataclasses.replace(product, sales_count=max(0, product.sales_count + total)), writes), now)


def update_product_sales(product_id: str, new_count: Callable[[int], int], now: datetime) -> Product:
    return _change_product(
        product_id, lambda product: (dataclasses.replace(product, sales_count=new_count(product.sales_count)), []), now)


def update_sku(sku_id: str, changes: dict[str, Any], now: datetime) -> None:
    """Change SKU fields. Price, market price and on_sale show in listings: they go through the
    product's versioned transaction; specs and the threshold are one conditional UpdateItem.
    SkuMissing if the SKU does not exist."""
    product_id = get_sku(sku_id, consistent=True).product_id
    listed = {name: value for name, value in changes.items() if name in LISTED_SKU_FIELDS}
    if not listed:
        update_sku_fields(sku_id, product_id, changes)
        return

    def change(product: Product) -> tuple[Product, list[_Write]]:
        entries = tuple(dataclasses.replace(entry, **listed) if entry.sku_id == sku_id else entry
                        for entry in product.skus)
        write = _Write("update", SkuRecord(sku_id), condition=sku_belongs_to(product_id),
                       actions=sku_update_actions(changes), on_failure=SkuMissing(sku_id))
        return dataclasses.replace(product, skus=entries), [write]

    _change_product(product_id, change, now)
