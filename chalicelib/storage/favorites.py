"""Table `favorites`: one item per (user, product) the user favorited, and one counter item per
user (sort key `#count`, which no product id can be: ids are `[A-Za-z0-9_.-]`).

Adding puts the favorite (`attribute_not_exists`) and adds 1 to the counter (`total < cap`) in
one transaction, so two devices adding at once can neither pass the cap nor count one favorite
twice; removing deletes it (`attribute_exists`) and takes 1 off in one transaction. A list is a
Query of the keys-only local index `by_added_at` (newest first: one page is one small Query, however
many favorites there are), then the page's products in one BatchGetItem (`product_cards`).
The counter item has no `added_at`, so the index never holds it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.indexes import KeysOnlyProjection, LocalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.storage.base import TableMeta, table_name
from chalicelib.storage.products import ProductRecord

COUNTER_KEY = "#count"
# What a favorites or history page shows of a product: a BatchGetItem reads only these.
CARD_ATTRIBUTES = ["product_id", "name", "images", "on_sale", "skus"]


class ByAddedAt(LocalSecondaryIndex):
    class Meta:
        index_name = "by_added_at"
        projection = KeysOnlyProjection()

    user_id = UnicodeAttribute(hash_key=True)
    added_at = NumberAttribute(range_key=True)


class FavoriteRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("favorites")

    user_id = UnicodeAttribute(hash_key=True)
    product_id = UnicodeAttribute(range_key=True)  # or COUNTER_KEY
    added_at = NumberAttribute(null=True)  # epoch milliseconds; absent on the counter item
    total = NumberAttribute(null=True)  # the counter item only (not `count`: Model.count is a method)

    by_added_at = ByAddedAt()


@dataclass(frozen=True)
class Favorite:
    product_id: str
    added_at_ms: int


@dataclass(frozen=True)
class ProductCard:
    """A product as a favorites or history line shows it."""
    product_id: str
    name: str
    cover_image: str | None
    min_price_fen: int | None  # the cheapest on-sale SKU; None when no SKU is on sale
    on_sale: bool  # the product and at least one of its SKUs are on sale


class AlreadyFavorite(Exception):
    """The product is among the user's favorites already (nothing written)."""


class FavoritesFull(Exception):
    """The user holds the maximum number of favorites (nothing written)."""


def _failed(error: TransactWriteError) -> list[bool]:
    """Per action of the cancelled transaction: did its condition fail?"""
    return [bool(reason and reason.code == "ConditionalCheckFailed") for reason in error.cancellation_reasons or []]


def add(user_id: str, product_id: str, now: datetime, cap: int) -> Favorite:
    """Favorite the product. AlreadyFavorite when it is one (whether or not the list is full),
    FavoritesFull when the user has `cap` favorites; either way nothing is written."""
    added_at_ms = int(now.timestamp() * 1000)
    counter = FavoriteRecord(user_id, COUNTER_KEY)
    try:
        with TransactWrite(connection=FavoriteRecord._get_connection().connection) as transaction:
            transaction.save(FavoriteRecord(user_id, product_id, added_at=added_at_ms),
                             condition=FavoriteRecord.product_id.does_not_exist())
            transaction.update(counter, actions=[FavoriteRecord.total.add(1)],
                               condition=FavoriteRecord.total.does_not_exist() | (FavoriteRecord.total < cap))
    except TransactWriteError as error:
        failed = _failed(error)
        if failed[:1] == [True]:
            raise AlreadyFavorite() from error
        if failed[1:2] == [True]:
            raise FavoritesFull() from error
        raise
    return Favorite(product_id, added_at_ms)


def remove(user_id: str, product_id: str) -> bool:
    """Unfavorite the product; False when it was not a favorite (nothing written)."""
    try:
        with TransactWrite(connection=FavoriteRecord._get_connection().connection) as transaction:
            transaction.delete(FavoriteRecord(user_id, product_id), condition=FavoriteRecord.added_at.exists())
            transaction.update(FavoriteRecord(user_id, COUNTER_KEY), actions=[FavoriteRecord.total.add(-1)])
    except TransactWriteError as error:
        if _failed(error)[:1] == [True]:
            return False
        raise
    return True


def get(user_id: str, product_id: str) -> Favorite | None:
    try:
        record = FavoriteRecord.get(user_id, product_id, consistent_read=True)
    except FavoriteRecord.DoesNotExist:
        return None
    return Favorite(record.product_id, int(record.added_at)) if record.added_at is not None else None


def count(user_id: str) -> int:
    try:
        return int(FavoriteRecord.get(user_id, COUNTER_KEY, consistent_read=True).total or 0)
    except FavoriteRecord.DoesNotExist:
        return 0


def list_page(user_id: str, limit: int,
              start: dict[str, Any] | None) -> tuple[list[Favorite], dict[str, Any] | None]:
    """A page of the user's favorites, newest first (ties: product id descending), and the key to
    go on from (None at the end). One Query of the local index, eventually consistent."""
    keys = FavoriteRecord.by_added_at.query(user_id, scan_index_forward=False, limit=limit,
                                            last_evaluated_key=start)
    page = [Favorite(key.product_id, int(key.added_at)) for key in keys]
    return page, keys.last_evaluated_key


def product_cards(product_ids: list[str]) -> dict[str, ProductCard]:
    """The products that exist among `product_ids`, by id: one BatchGetItem (per 100 ids) of the
    few attributes a card shows, eventually consistent."""
    wanted = list(dict.fromkeys(product_ids))
    if not wanted:
        return {}
    return {record.product_id: _card(record)
            for record in ProductRecord.batch_get(wanted, attributes_to_get=CARD_ATTRIBUTES)}


def _card(record: ProductRecord) -> ProductCard:
    prices = [int(sku.price_fen) for sku in record.skus or () if sku.on_sale]  # as Product.cheapest_sku
    return ProductCard(product_id=record.product_id, name=record.name,
                       cover_image=record.images[0] if record.images else None,
                       min_price_fen=min(prices) if prices else None,
                       on_sale=bool(record.on_sale) and bool(prices))
