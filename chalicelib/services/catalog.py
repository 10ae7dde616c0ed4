"""Catalog reads for the mini-program: the category tree, product lists and search, a product
page, pickup stores. Each is a fixed, small number of DynamoDB calls (docs/decisions.md)."""
from __future__ import annotations

from chalicelib import clock
from chalicelib.domain import catalog as rules
from chalicelib.domain.cursors import InvalidCursor, decode_cursor, encode_cursor
from chalicelib.errors import NotFound
from chalicelib.lazy import lazy_module
from chalicelib.log import get_logger
from chalicelib.schemas.catalog import (CategoryNode, CategoryTree, ProductDetail, ProductListQuery, ProductPage,
                                        ProductSummary, SkuView, StorePage, StoreView)
from chalicelib.settings import get_settings
from chalicelib.storage import categories, listings, skus, stores
from chalicelib.storage.products import Product, ProductMissing, get_product

log = get_logger(__name__)
history = lazy_module("chalicelib.services.history")  # only a page viewed with a token needs it


def category_tree() -> CategoryTree:
    """One Scan of the small categories table per call. Not cached in memory: another Lambda's
    admin write could not invalidate this one's copy, and the Scan costs about one read unit."""
    every = categories.list_categories()
    hidden = _hidden_ids(every)  # hidden by the merchant, with everything under them
    flat = [{"category_id": c.category_id, "name": c.name, "parent_id": c.parent_id, "level": c.level,
             "sort_order": c.sort_order} for c in every if c.category_id not in hidden]
    return CategoryTree(items=[_node(node) for node in rules.category_tree(flat)])


def _hidden_ids(every: list[categories.Category]) -> set[str]:
    return {c.category_id for c in every if c.buyer_hidden}


def _node(node: dict) -> CategoryNode:
    return CategoryNode(category_id=node["category_id"], name=node["name"], parent_id=node["parent_id"],
                        level=node["level"], children=[_node(child) for child in node["children"]])


def list_products(query: ProductListQuery) -> ProductPage:
    """One Query on the listing index (at most listings.MAX_QUERY_CALLS when filters discard
    items, then the page may be short but still has a cursor). An unknown category is an empty
    list, not a 404: it is a filter, not a resource."""
    plan = rules.plan_listing_query(category_id=query.category_id, q=query.q, min_price_fen=query.min_price_fen,
                                    max_price_fen=query.max_price_fen, sort=query.sort)
    if plan is not None and query.category_id and _category_hidden(query.category_id):
        plan = None  # a hidden category lists nothing (its products are still in search and "all")
    if plan is None:
        if query.cursor:  # still tell a client its cursor is not one we gave out
            decode_cursor(query.cursor, _secret(), "products:none")
        return ProductPage(items=[], next_cursor=None)
    start = _start_position(query.cursor, plan)
    found, position = listings.query_listings(plan, start, query.limit)
    return ProductPage(items=[ProductSummary(**vars(listing)) for listing in found],
                       next_cursor=encode_cursor(position, _secret(), plan.scope))


def _category_hidden(category_id: str) -> bool:
    """One GetItem: the category keeps whether it is hidden or under a hidden one (buyer_hidden)."""
    try:
        return categories.get_category(category_id).buyer_hidden
    except categories.CategoryMissing:
        return False


def _start_position(cursor: str | None, plan: rules.ListingQuery) -> dict[str, str] | None:
    position = decode_cursor(cursor, _secret(), plan.scope)
    if position is not None and (set(position) != set(plan.key_names)
                                 or not all(isinstance(value, str) for value in position.values())):
        raise InvalidCursor()  # signed by us, but for another shape of query (an older release)
    return position


def _secret() -> str:
    return get_settings().auth_token_secret


def product_detail(product_id: str, viewer_token: str | None = None) -> ProductDetail:
    """The product page: GetItem + one BatchGetItem of its SKUs. Off-sale products are 404.
    With a valid user token (`viewer_token`, optional: the page is public) the view goes into
    the user's history: one PutItem alongside the SKUs' read, best-effort (services/history.py
    says why a direct write and not a queue)."""
    product = find_product(product_id)
    if not product.on_sale:
        raise NotFound("No such product", code="product_not_found")
    pending = _start_recording(viewer_token, product_id) if viewer_token else None
    views = [sku_view(sku) for sku in skus.get_skus([entry.sku_id for entry in product.skus])]
    if pending is not None:
        history.finish_recording(pending)
    return ProductDetail(**product_fields(product), skus=views)


def _start_recording(viewer_token: str, product_id: str):
    try:
        return history.start_recording(viewer_token, product_id)
    except Exception:  # noqa: BLE001 - history never fails a product page
        log.exception("recording a view failed", product_id=product_id)
        return None


def find_product(product_id: str, consistent: bool = False) -> Product:
    try:
        return get_product(product_id, consistent=consistent)
    except ProductMissing:
        raise NotFound("No such product", code="product_not_found") from None


def product_fields(product: Product) -> dict:
    return dict(product_id=product.product_id, name=product.name, category_id=product.category_id,
                category_path=list(product.category_path), description=product.description,
                images=list(product.images), video_url=product.video_url, keywords=list(product.keywords),
                virtual=product.virtual, on_sale=product.on_sale, sales_count=product.sales_count,
                created_at=clock.to_iso(product.created_at))


def sku_view(sku: skus.Sku) -> SkuView:
    return SkuView(sku_id=sku.sku_id, specs=sku.specs, price_fen=sku.price_fen, market_price_fen=sku.market_price_fen,
                   stock_status=rules.stock_status(sku.available, sku.low_stock_threshold),
                   available=max(0, sku.available), on_sale=sku.on_sale)


def list_stores(limit: int, cursor: str | None, near: tuple[float, float] | None = None,
                sku_id: str | None = None) -> StorePage:
    """Pickup stores in display order, or nearest first from `near` (those without coordinates
    last), with the units of `sku_id` on each store's shelf. The table holds a handful of items:
    it is read whole (one Scan) and paged here; the shelves of a page are one BatchGetItem."""
    from chalicelib.domain.geo import distance_m

    scope = f"stores:{near}:{sku_id}"
    after = decode_cursor(cursor, _secret(), scope)
    distances = {}
    ordered = stores.list_stores()
    if near is not None:
        distances = {s.store_id: distance_m(near[0], near[1], s.lat, s.lng) for s in ordered
                     if s.lat is not None and s.lng is not None}
        ordered.sort(key=lambda s: (s.store_id not in distances, distances.get(s.store_id, 0), s.sort_order, s.store_id))
    start = 0
    if after is not None:
        start = next((i + 1 for i, s in enumerate(ordered) if s.store_id == after.get("store_id")), len(ordered))
    page = ordered[start:start + limit]
    more = start + limit < len(ordered)
    next_cursor = encode_cursor({"store_id": page[-1].store_id}, _secret(), scope) if more and page else None
    shelves = stores.shelf_units([s.store_id for s in page], sku_id) if sku_id else {}
    return StorePage(items=[StoreView(store_id=s.store_id, name=s.name, address=s.address, hours=s.hours,
                                      phone=s.phone, lat=s.lat, lng=s.lng, distance_m=distances.get(s.store_id),
                                      sku_units=shelves.get(s.store_id)) for s in page], next_cursor=next_cursor)


