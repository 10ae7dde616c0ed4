"""Merchant catalog edits: categories, products with their SKUs, SKU prices and flags.

Every edit that a listing shows goes through storage/catalog.py, which rewrites the product's
listing items in the same transaction. Stock moves are not here (services for stock do them).
"""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Iterator

from chalicelib import clock
from chalicelib.errors import BadRequest, Conflict, NotFound
from chalicelib.schemas.catalog import (AdminProductDetail, AdminSkuView, CategoryCreate, CategoryCreated,
                                        ProductCreate, ProductCreated, ProductPatch, SkuPatch)
from chalicelib.services.catalog import find_product, product_fields, sku_view
from chalicelib.storage import catalog, categories, skus
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.categories import CategoryMissing
from chalicelib.storage.products import Product, ProductMissing
from chalicelib.storage.skus import SkuMissing


@contextmanager
def _storage_failures() -> Iterator[None]:
    """Storage's named failures as the API's errors."""
    try:
        yield
    except ProductMissing:
        raise NotFound("No such product", code="product_not_found") from None
    except SkuMissing:
        raise NotFound("No such SKU", code="sku_not_found") from None
    except CategoryMissing:
        raise NotFound("No such category", code="category_not_found") from None
    except catalog.ConcurrentUpdate:
        raise Conflict("The product is being changed by someone else; try again", code="concurrent_update") from None


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def create_category(body: CategoryCreate) -> CategoryCreated:
    with _storage_failures():
        parent = categories.get_category(body.parent_id) if body.parent_id else None
    if parent is not None and parent.level >= categories.MAX_LEVEL:
        raise BadRequest(f"Categories have at most {categories.MAX_LEVEL} levels", code="category_too_deep",
                         details=[{"field": "parent_id", "message": f"is at level {parent.level}"}])
    category_id = _new_id("c")
    path = [*parent.path, category_id] if parent else [category_id]
    created = categories.create_category(category_id, body.name, body.parent_id, len(path), body.sort_order, path,
                                         buyer_hidden=parent.buyer_hidden if parent else False)  # under a hidden one
    return CategoryCreated(category_id=created.category_id, name=created.name, parent_id=created.parent_id,
                           level=created.level)


def create_product(body: ProductCreate) -> ProductCreated:
    """Product, SKUs and listing items in one transaction. Any existing category will do."""
    with _storage_failures():
        path = categories.get_category(body.category_id).path
    now = clock.now()
    product = Product(product_id=_new_id("p"), name=body.name, category_path=path, description=body.description,
                      images=tuple(body.images or ()), video_url=body.video_url or None,
                      keywords=tuple(body.keywords or ()), virtual=body.virtual, on_sale=True, sales_count=0,
                      created_at=now)
    new_skus = [skus.NewSku(sku_id=_new_id("sku"), specs=dict(sku.specs), price_fen=sku.price_fen, stock=sku.stock,
                            low_stock_threshold=sku.low_stock_threshold, market_price_fen=sku.market_price_fen)
                for sku in body.skus]
    try:
        catalog.create_product_with_skus(product, new_skus, now)
    except ConditionFailed:  # random ids collided: practically never; the client may retry
        raise Conflict("Could not allocate ids; try again", code="id_conflict") from None
    created = [skus.Sku(sku_id=sku.sku_id, product_id=product.product_id, specs=sku.specs, price_fen=sku.price_fen,
                        market_price_fen=sku.market_price_fen, low_stock_threshold=sku.low_stock_threshold,
                        on_sale=True, available=sku.stock, allocated=0, reserved=0, sold=0, stock_in=sku.stock)
               for sku in new_skus]  # exactly what the transaction wrote: no read back
    return ProductCreated(product_id=product.product_id, skus=[admin_sku_view(sku) for sku in created])


def update_product(product_id: str, body: ProductPatch) -> AdminProductDetail:
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    with _storage_failures():
        if "category_id" in changes:
            changes["category_path"] = categories.get_category(changes.pop("category_id")).path
        for name in ("images", "keywords"):
            if name in changes:
                changes[name] = tuple(changes[name])
        if "video_url" in changes:
            changes["video_url"] = changes["video_url"] or None
        if changes:
            catalog.update_product(product_id, changes, clock.now())
        return product_for_admin(product_id)


def product_for_admin(product_id: str) -> AdminProductDetail:
    """Any product, on sale or not, with each SKU's stock counters (consistent reads)."""
    product = find_product(product_id, consistent=True)
    views = [admin_sku_view(sku) for sku in skus.get_skus([entry.sku_id for entry in product.skus], consistent=True)]
    return AdminProductDetail(**product_fields(product), skus=views)


def update_sku(sku_id: str, body: SkuPatch) -> AdminSkuView:
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if "market_price_fen" in changes and changes["market_price_fen"] == 0:
        changes["market_price_fen"] = None  # 0 removes the market price (null means "not sent")
    with _storage_failures():
        if changes:
            catalog.update_sku(sku_id, changes, clock.now())
        return admin_sku(sku_id)


def admin_sku(sku_id: str) -> AdminSkuView:
    with _storage_failures():
        return admin_sku_view(skus.get_sku(sku_id, consistent=True))


def admin_sku_view(sku: skus.Sku) -> AdminSkuView:
    view = sku_view(sku)
    return AdminSkuView(sku_id=sku.sku_id, product_id=sku.product_id, specs=sku.specs, price_fen=sku.price_fen,
                        market_price_fen=sku.market_price_fen, low_stock_threshold=sku.low_stock_threshold,
                        on_sale=sku.on_sale, stock_status=view.stock_status, available=sku.available,
                        allocated=sku.allocated, reserved=sku.reserved, sold=sku.sold, stock_in=sku.stock_in)
