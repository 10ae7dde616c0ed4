"""The merchant's category tree: read it whole (hidden ones too), rename, move, hide.

A move is planned by domain/category_moves.py (at most 3 levels, no cycle), written in one
transaction (storage/categories.py: each moved category and the new parent conditioned on their
version), then each product of the moved subtree is re-pathed through the catalog write that
rewrites its listing items. If that second step is cut short (a crash, a timeout), the same PATCH
again finishes it: every PATCH re-paths the products of the category's subtree whose path
differs from their category's (a no-op when none does). Products are never orphaned: categories
are never deleted, and a product keeps its own category through any move.
"""
from __future__ import annotations

from typing import Any

from chalicelib import audit_context, clock
from chalicelib.domain import catalog as rules
from chalicelib.domain import category_moves
from chalicelib.errors import Conflict, NotFound
from chalicelib.log import get_logger
from chalicelib.storage import catalog, categories, products
from chalicelib.storage.base import ConditionFailed

log = get_logger(__name__)
MAX_PRODUCTS_PER_CATEGORY_PAGE = 100


def admin_tree() -> dict[str, Any]:
    flat = [_flat(c) for c in categories.list_categories(consistent=True)]
    return {"items": rules.category_tree(flat)}


def _flat(category: categories.Category) -> dict[str, Any]:
    return {"category_id": category.category_id, "name": category.name, "parent_id": category.parent_id,
            "level": category.level, "sort_order": category.sort_order, "hidden": category.hidden}


def edit_category(category_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Rename, move, re-order or (un)hide; every category whose path or buyer visibility changes
    with it is written in the same transaction (storage/categories.py write_categories)."""
    every = {c.category_id: c for c in categories.list_categories(consistent=True)}
    current = every.get(category_id)
    if current is None:
        raise NotFound("No such category", code="category_not_found")
    placed: dict[str, category_moves.Placed] = {}
    parent = None
    new_parent = (changes["parent_id"] or None) if "parent_id" in changes else current.parent_id
    if new_parent != current.parent_id:
        placed = {p.category_id: p for p in category_moves.plan_move(
            {c.category_id: c.parent_id for c in every.values()}, {c.category_id: c.path for c in every.values()},
            category_id, new_parent)}
        parent = every[new_parent] if new_parent else None
    own = {key: changes[key] for key in ("name", "hidden", "sort_order")
           if key in changes and getattr(current, key) != changes[key]}
    writes = _writes(every, category_id, placed, own)
    if writes:
        try:
            categories.write_categories(writes, parent)
        except ConditionFailed:
            raise Conflict("The categories changed meanwhile; read them again", code="concurrent_update") from None
    after = categories.get_category(category_id, consistent=True)
    audit_context.note(f"category:{category_id}", before=_flat(current) | {"path": list(current.path)},
                       after=_flat(after) | {"path": list(after.path)})
    repathed = repath_products(category_id)
    if repathed:
        log.info("products re-pathed after a category move", category_id=category_id, products=repathed)
    return next(n for n in _walk(admin_tree()["items"]) if n["category_id"] == category_id)


def _writes(every: dict[str, categories.Category], category_id: str, placed: dict[str, category_moves.Placed],
            own: dict[str, Any]) -> list[tuple[categories.Category, dict[str, Any]]]:
    """What changes per category: the moved ones' place, the edited one's fields, and the
    buyer_hidden flag of every category whose visibility the edit changes."""
    paths = {cid: placed[cid].path if cid in placed else c.path for cid, c in every.items()}
    hidden = [cid for cid, c in every.items() if (own.get("hidden", c.hidden) if cid == category_id else c.hidden)]
    effective = category_moves.hidden_for_buyers(paths, hidden)
    writes = []
    for cid, category in every.items():
        fields: dict[str, Any] = {}
        if cid in placed:
            fields.update(parent_id=placed[cid].parent_id, level=placed[cid].level, path=placed[cid].path)
        if cid == category_id:
            fields.update(own)
        if (cid in effective) != category.buyer_hidden:
            fields["buyer_hidden"] = cid in effective
        if fields:
            writes.append((category, fields))
    return writes


def _walk(nodes: list[dict]) -> list[dict]:
    found, stack = [], list(nodes)
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(node["children"])
    return found


def repath_products(category_id: str) -> int:
    """Give every product of the category's subtree its category's current path (each product
    write rewrites its listing items in its own transaction). Returns how many changed."""
    every = {c.category_id: c for c in categories.list_categories(consistent=True)}
    changed = 0
    for member in category_moves.subtree({c.category_id: c.parent_id for c in every.values()}, category_id):
        path = every[member].path
        cursor = None
        while True:
            ids, cursor = products.product_ids_in_category(member, MAX_PRODUCTS_PER_CATEGORY_PAGE, cursor)
            for product_id in ids:
                product = products.get_product(product_id, consistent=True)
                if product.category_path != path:
                    catalog.update_product(product_id, {"category_path": path}, clock.now())
                    changed += 1
            if not cursor:
                break
    return changed
