"""Table `product_listings`: the index that lists and searches products with Query, never Scan.

One item per (facet, listed product). Partition key `facet`: `all`, `cat#<id>` for the
product's category and each ancestor, `kw#<token>` for each search token (domain/catalog.py).
Orders: the table's sort key `newest_key` (creation time + id), and two local secondary
indexes on the same partition, `by_price` (`price_key`: zero-padded cheapest on-sale price + id)
and `by_sales` (`sales_key`). Each item carries what a list shows, so a list page is one Query
with no further reads. Items are written only by storage/catalog.py, in the same transaction
as the product change they reflect.
"""
from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

from pynamodb.attributes import BooleanAttribute, ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, LocalSecondaryIndex
from pynamodb.models import Model

from chalicelib.domain import catalog as rules
from chalicelib.storage.base import TableMeta, table_name
from chalicelib.storage.products import Product

# A filtered Query may discard most of what it reads; stop after this many calls and hand back
# a short page with a cursor rather than read on (the cost of one request stays bounded).
MAX_QUERY_CALLS = 3


class ByPriceIndex(LocalSecondaryIndex):
    class Meta:
        index_name = "by_price"
        projection = AllProjection()

    facet = UnicodeAttribute(hash_key=True)
    price_key = UnicodeAttribute(range_key=True)


class BySalesIndex(LocalSecondaryIndex):
    class Meta:
        index_name = "by_sales"
        projection = AllProjection()

    facet = UnicodeAttribute(hash_key=True)
    sales_key = UnicodeAttribute(range_key=True)


class ListingRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("product_listings")

    facet = UnicodeAttribute(hash_key=True)
    newest_key = UnicodeAttribute(range_key=True)
    price_key = UnicodeAttribute()
    sales_key = UnicodeAttribute()
    product_id = UnicodeAttribute()
    name = UnicodeAttribute()
    cover_image = UnicodeAttribute(null=True)
    min_price_fen = NumberAttribute()
    market_price_fen = NumberAttribute(null=True)
    sales_count = NumberAttribute(default=0)
    virtual = BooleanAttribute(default=False)
    category_path = ListAttribute(of=UnicodeAttribute, default=list)  # filters keyword results by category
    search_text = UnicodeAttribute(default="")  # the other query tokens are matched against it
    version = NumberAttribute()  # the product version this item reflects

    by_price = ByPriceIndex()
    by_sales = BySalesIndex()


@dataclass(frozen=True)
class Listing:
    product_id: str
    name: str
    cover_image: str | None
    min_price_fen: int
    market_price_fen: int | None
    sales_count: int
    virtual: bool


def listed_facets(product: Product) -> list[str]:
    """The partitions this product belongs in now (none when it is not listed)."""
    if not product.is_listed:
        return []
    tokens = rules.index_tokens(product.name, product.keywords)
    return rules.listing_facets(product.category_path, tokens)


def listing_records(product: Product) -> list[ListingRecord]:
    """The items to put for `product` (one per facet), all alike but for the partition key."""
    cheapest = product.cheapest_sku
    if cheapest is None or not product.is_listed:
        return []
    fields = dict(
        price_key=rules.price_key(cheapest.price_fen, product.product_id),
        sales_key=rules.sales_key(product.sales_count, product.product_id),
        product_id=product.product_id, name=product.name,
        cover_image=product.images[0] if product.images else None,
        min_price_fen=cheapest.price_fen, market_price_fen=cheapest.market_price_fen,
        sales_count=product.sales_count, virtual=product.virtual, category_path=list(product.category_path),
        search_text=rules.search_text(product.name, product.keywords), version=product.version,
    )
    key = listing_key(product)
    return [ListingRecord(facet, key, **fields) for facet in listed_facets(product)]


def listing_key(product: Product) -> str:
    """The sort key of every listing item of this product (it never changes)."""
    return rules.newest_key(product.created_at, product.product_id)


def _to_listing(record: ListingRecord) -> Listing:
    return Listing(product_id=record.product_id, name=record.name, cover_image=record.cover_image,
                   min_price_fen=int(record.min_price_fen),
                   market_price_fen=None if record.market_price_fen is None else int(record.market_price_fen),
                   sales_count=int(record.sales_count or 0), virtual=bool(record.virtual))


def query_listings(plan: rules.ListingQuery, start: dict[str, str] | None,
                   limit: int) -> tuple[list[Listing], dict[str, str] | None]:
    """One page in the plan's order, from `start` (a position from an earlier page): the
    listings and the position to continue from (None at the end). One Query when nothing is
    filtered (it asks for limit + 1 items to know whether more follow); at most MAX_QUERY_CALLS."""
    source = getattr(ListingRecord, plan.index) if plan.index else ListingRecord
    page_size = min(100, limit * 3) if plan.filtered else limit + 1
    pages = source.query(plan.partition, range_key_condition=_key_condition(plan),
                         filter_condition=_filter(plan), scan_index_forward=plan.ascending,
                         last_evaluated_key=_typed(start), page_size=page_size).page_iter
    found: list[dict] = []
    for _ in range(MAX_QUERY_CALLS):
        try:
            page = next(pages)
        except StopIteration:
            break
        for raw in page.get("Items", []):
            if len(found) == limit:  # more follow: continue after the last item handed out
                return _listings(found), _position(found[-1], plan)
            found.append(raw)
        if pages.last_evaluated_key is None or len(found) == limit:
            break
    return _listings(found), _plain(pages.last_evaluated_key)


def _key_condition(plan: rules.ListingQuery):
    attribute = getattr(ListingRecord, plan.sort_attribute)
    if plan.lower is not None and plan.upper is not None:
        return attribute.between(plan.lower, plan.upper)  # upper is never a real key: exclusive
    if plan.lower is not None:
        return attribute >= plan.lower
    if plan.upper is not None:
        return attribute < plan.upper
    return None


def _filter(plan: rules.ListingQuery):
    conditions = [ListingRecord.search_text.contains(token) for token in plan.contains_tokens]
    if plan.category_id:
        conditions.append(ListingRecord.category_path.contains(plan.category_id))
    if plan.min_price_fen is not None:
        conditions.append(ListingRecord.min_price_fen >= plan.min_price_fen)
    if plan.max_price_fen is not None:
        conditions.append(ListingRecord.min_price_fen <= plan.max_price_fen)
    return functools.reduce(operator.and_, conditions) if conditions else None


def _listings(raw_items: list[dict]) -> list[Listing]:
    return [_to_listing(ListingRecord.from_raw_data(raw)) for raw in raw_items]


def _position(raw: dict, plan: rules.ListingQuery) -> dict[str, str]:
    return {name: raw[name]["S"] for name in plan.key_names}


def _plain(key: dict | None) -> dict[str, str] | None:
    return {name: value["S"] for name, value in key.items()} if key else None


def _typed(position: dict[str, str] | None) -> dict | None:
    return {name: {"S": value} for name, value in position.items()} if position else None
