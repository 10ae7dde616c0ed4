"""Batch reads of SKUs and their products, for checkout and the cart (one BatchGet per table)."""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.storage.catalog import ProductRecord, SkuRecord


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
