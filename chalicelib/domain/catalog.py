"""Pure catalog rules: stock status, search tokens, listing facets and sort keys, query plans.

The product listing index (storage/listings.py) keeps one item per (facet, product): facet
`all`, `cat#<id>` for the product's category and each ancestor, and `kw#<token>` for each search
token. This module decides those facets and keys, and turns a list request into one Query
plan, so the rules are unit-tested without DynamoDB. See docs/decisions.md, "Catalog".
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Iterable

# At most this many keyword partitions per product: with 50 SKUs and 3 category levels, every
# create or re-list then fits one 100-item TransactWrite (see docs/decisions.md).
MAX_INDEXED_TOKENS = 45
MAX_QUERY_TOKENS = 20
MAX_WORD_LENGTH = 30
KEY_DIGITS = 12  # zero-padded numbers sort as strings; 12 digits hold any price or sales count
MAX_KEY_NUMBER = 10 ** KEY_DIGITS - 2

SORTS = ("sales", "price_asc", "price_desc", "newest")
DEFAULT_SORT = "newest"
# sort -> (sort key attribute, index name or None for the table itself, ascending?)
_SORT_KEYS = {
    "newest": ("newest_key", None, False),
    "sales": ("sales_key", "by_sales", False),
    "price_asc": ("price_key", "by_price", True),
    "price_desc": ("price_key", "by_price", False),
}
# ASCII letter/digit runs, or runs of other letters (Chinese and the like); the rest separates.
_SEGMENT = re.compile(r"[a-z0-9]+|[^\W_a-z0-9]+")


def stock_status(available: int, low_stock_threshold: int) -> str:
    """`sold_out` at 0, `low` at or under the merchant's threshold, else `in_stock`."""
    if available <= 0:
        return "sold_out"
    if available <= low_stock_threshold:
        return "low"
    return "in_stock"


# ------------------------------------------------------------------------------ search tokens

def normalize(text: str) -> str:
    """NFKC (full-width ＡＢ１ -> ab1) and lower case, so a query matches however it was typed."""
    return unicodedata.normalize("NFKC", text).lower()


def _segments(text: str) -> list[tuple[str, bool]]:
    """(run, is_ascii) for each run of ASCII letters/digits or of other letters."""
    return [(run, run[0].isascii()) for run in _SEGMENT.findall(normalize(text))]


def _bigrams(run: str) -> list[str]:
    return [run[i:i + 2] for i in range(len(run) - 1)]


def _unique(tokens: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(tokens))


def index_tokens(name: str, keywords: Iterable[str]) -> list[str]:
    """The keyword partitions a product is listed under.

    Chinese has no spaces, so a text is cut into overlapping character bigrams (烟台红富士 ->
    烟台 台红 红富 富士), plus single characters so a one-character query (梨, 桃) still finds
    something; ASCII words count whole (2+ characters). Whole words and bigrams come first
    (name before keywords) and single characters last, so the cap drops the least useful.
    """
    words_and_bigrams: list[str] = []
    unigrams: list[str] = []
    for text in [name, *keywords]:
        for run, is_ascii in _segments(text):
            if is_ascii:
                if len(run) >= 2:
                    words_and_bigrams.append(run[:MAX_WORD_LENGTH])
            else:
                words_and_bigrams.extend(_bigrams(run))
                unigrams.extend(run)
    return _unique(words_and_bigrams + unigrams)[:MAX_INDEXED_TOKENS]


def query_tokens(q: str) -> list[str]:
    """A search string cut the same way; every token must match. A Chinese run of two or more
    characters gives bigrams only (more selective than single characters); the first token,
    which picks the partition to Query, is a word or bigram whenever the query has one."""
    tokens: list[str] = []
    for run, is_ascii in _segments(q):
        if is_ascii:
            if len(run) >= 2:
                tokens.append(run[:MAX_WORD_LENGTH])
        else:
            tokens.extend(_bigrams(run) if len(run) > 1 else [run])
    ordered = sorted(_unique(tokens), key=lambda token: len(token) == 1)  # stable: keeps text order
    return ordered[:MAX_QUERY_TOKENS]


def search_text(name: str, keywords: Iterable[str]) -> str:
    """Normalised text that the other query tokens are matched against (a substring filter).
    Newlines between the parts stop a bigram from spanning the name and a keyword."""
    return "\n".join(normalize(text) for text in [name, *keywords])


# ----------------------------------------------------------------------------- listing keys

def listing_facets(category_path: Iterable[str], tokens: Iterable[str]) -> list[str]:
    """Partition keys of a listed product: everything, each category up the tree, each token."""
    return _unique(["all", *(f"cat#{category}" for category in category_path),
                    *(f"kw#{token}" for token in tokens)])


def price_key(min_price_fen: int, product_id: str) -> str:
    return f"{min_price_fen:0{KEY_DIGITS}d}#{product_id}"


def sales_key(sales_count: int, product_id: str) -> str:
    return f"{min(sales_count, MAX_KEY_NUMBER):0{KEY_DIGITS}d}#{product_id}"


def newest_key(created_at: datetime, product_id: str) -> str:
    """Creation time (UTC, microseconds) then id: unique, and never changes for a product."""
    return f"{created_at.astimezone(timezone.utc).strftime('%Y%m%dT%H%M%S.%f')}#{product_id}"


# ------------------------------------------------------------------------------ query plans

@dataclass(frozen=True)
class ListingQuery:
    """One Query on the listing table: a partition, an order, a key range, and filters."""
    partition: str
    sort_attribute: str
    index: str | None
    ascending: bool
    lower: str | None = None  # sort key >= lower (price sort with a price range)
    upper: str | None = None  # sort key < upper
    contains_tokens: tuple[str, ...] = ()  # search_text must contain each
    category_id: str | None = None  # category_path must contain it (when querying a keyword)
    min_price_fen: int | None = None  # price filters when not sorting by price
    max_price_fen: int | None = None

    @property
    def filtered(self) -> bool:
        return bool(self.contains_tokens or self.category_id or self.min_price_fen is not None
                    or self.max_price_fen is not None)

    @property
    def key_names(self) -> tuple[str, ...]:
        """The attributes of a position in this order (DynamoDB's LastEvaluatedKey)."""
        return ("facet", "newest_key") + ((self.sort_attribute,) if self.index else ())

    @property
    def scope(self) -> str:
        """Names this exact query, so a cursor from another query (or order) is refused."""
        text = json.dumps([self.partition, self.sort_attribute, self.ascending, self.lower, self.upper,
                           self.contains_tokens, self.category_id, self.min_price_fen, self.max_price_fen],
                          ensure_ascii=False)
        return "products:" + hashlib.sha256(text.encode()).hexdigest()[:24]


def plan_listing_query(*, category_id: str | None = None, q: str | None = None,
                       min_price_fen: int | None = None, max_price_fen: int | None = None,
                       sort: str = DEFAULT_SORT) -> ListingQuery | None:
    """The Query that answers a list request, or None when nothing can match (a query with no
    searchable characters). A keyword query reads its first token's partition and filters
    the rest; a price range is a key condition on the price order, otherwise a filter."""
    sort_attribute, index, ascending = _SORT_KEYS[sort]
    tokens: list[str] = []
    if q is not None:
        tokens = query_tokens(q)
        if not tokens:
            return None
    partition = f"kw#{tokens[0]}" if tokens else f"cat#{category_id}" if category_id else "all"
    plan = ListingQuery(partition=partition, sort_attribute=sort_attribute, index=index, ascending=ascending,
                        contains_tokens=tuple(tokens[1:]), category_id=category_id if tokens else None)
    if sort_attribute == "price_key":
        lower = _price_bound(min_price_fen)
        upper = _price_bound(None if max_price_fen is None else max_price_fen + 1)
        return replace(plan, lower=lower, upper=upper)
    return replace(plan, min_price_fen=min_price_fen, max_price_fen=max_price_fen)


def _price_bound(price_fen: int | None) -> str | None:
    # "000000003990" sorts before every "000000003990#<id>", after every cheaper key.
    return None if price_fen is None else f"{min(price_fen, MAX_KEY_NUMBER + 1):0{KEY_DIGITS}d}"


# ---------------------------------------------------------------------------- category tree

def category_tree(categories: Iterable[dict]) -> list[dict]:
    """Nest flat categories ({category_id, name, parent_id, level, sort_order}) into a tree,
    each level sorted by sort_order then name; a category whose parent is unknown is a root."""
    nodes = {c["category_id"]: {**c, "children": []} for c in categories}
    roots: list[dict] = []
    for node in nodes.values():
        parent = nodes.get(node["parent_id"]) if node["parent_id"] else None
        (parent["children"] if parent else roots).append(node)

    def ordered(level: list[dict]) -> list[dict]:
        level.sort(key=lambda n: (n.get("sort_order", 0), n["name"], n["category_id"]))
        for node in level:
            ordered(node["children"])
        return level

    return ordered(roots)
