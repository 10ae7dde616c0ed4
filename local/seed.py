"""Seeds the demo store (local/demo_store.json, a fruit chain "鲜果园"): 3-level categories,
products with SKUs, a virtual gift card, and one SKU already at its low-stock threshold.

Idempotent: ids are fixed and every create is conditional, so a second run adds nothing.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

DEMO_STORE = Path(__file__).with_name("demo_store.json")


def _walk(categories: list[dict[str, Any]], parent: str | None = None, level: int = 1) -> Iterator[tuple]:
    for order, category in enumerate(categories):
        yield category["id"], category["name"], parent, level, order
        yield from _walk(category.get("children", []), category["id"], level + 1)


def seed_demo_store() -> list[str]:
    from chalicelib import clock
    from chalicelib.storage import catalog
    from chalicelib.storage.base import ConditionFailed

    store = json.loads(DEMO_STORE.read_text(encoding="utf-8"))
    parents: dict[str, str | None] = {}
    created = {"categories": 0, "products": 0, "skus": 0}

    def create(kind: str, write) -> None:
        try:
            write()
            created[kind] += 1
        except ConditionFailed:
            pass  # already seeded

    for category_id, name, parent, level, order in _walk(store["categories"]):
        parents[category_id] = parent
        create("categories", lambda: catalog.create_category(category_id, name, parent, level, order))
    low_stock = []
    for product in store["products"]:
        path = _path(product["category"], parents)
        create("products", lambda: catalog.create_product(
            product["id"], name=product["name"], category_path=path, description=product.get("description"),
            images=product.get("images", []), keywords=product.get("keywords", []),
            virtual=product.get("virtual", False), now=clock.now()))
        for sku in product["skus"]:
            create("skus", lambda: catalog.create_sku(
                sku["id"], product_id=product["id"], specs=sku["specs"], price_fen=sku["price_fen"],
                stock=sku["stock"], low_stock_threshold=sku.get("low_stock_threshold", 0),
                market_price_fen=sku.get("market_price_fen")))
            if sku["stock"] <= sku.get("low_stock_threshold", 0):
                low_stock.append(f"{product['name']} {'/'.join(sku['specs'].values())} ({sku['stock']} left)")
    return [f"{store['store']}: created {created['categories']} categories, {created['products']} products, "
            f"{created['skus']} SKUs (existing ones kept)",
            f"low stock: {', '.join(low_stock) or 'none'}"]


def _path(category_id: str, parents: dict[str, str | None]) -> list[str]:
    path = [category_id]
    while parents.get(path[0]):
        path.insert(0, parents[path[0]])
    return path
