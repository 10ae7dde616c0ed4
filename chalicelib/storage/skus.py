"""Table `skus`: one item per SKU, with its stock counters (API.md, "Stock counters").

Keyed by sku_id alone, so carts, orders and stock moves reach a SKU with one GetItem or one
transaction item. A product's SKUs are found through the product's `skus` list (one
BatchGetItem), not through an index: a GSI on this table would be written again on every
stock move, the hottest write in the store. Counters hold at all times:
`stock_in == available + allocated + reserved + sold`.
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.attributes import BooleanAttribute, MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.storage.base import TableMeta, condition_failure_as, table_name


class SkuRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("skus")

    sku_id = UnicodeAttribute(hash_key=True)
    product_id = UnicodeAttribute()
    specs = MapAttribute(default=dict)  # e.g. {"weight": "5斤"}
    price_fen = NumberAttribute()
    market_price_fen = NumberAttribute(null=True)
    low_stock_threshold = NumberAttribute(default=0)
    on_sale = BooleanAttribute(default=True)
    # The product's own on_sale, kept here by every write that changes it (storage/catalog.py,
    # in the product's transaction), so placing an order conditions on the SKU alone instead of
    # adding a ConditionCheck per product. Absent on SKUs written before it was kept: on sale.
    product_on_sale = BooleanAttribute(null=True)
    available = NumberAttribute(default=0)
    allocated = NumberAttribute(default=0)
    reserved = NumberAttribute(default=0)
    sold = NumberAttribute(default=0)
    stock_in = NumberAttribute(default=0)
    # True from the moment available fell to the low-stock threshold until it rises above it
    # again: one alert per crossing (storage/alerts.py).
    low_stock_alerted = BooleanAttribute(null=True)


@dataclass(frozen=True)
class Sku:
    sku_id: str
    product_id: str
    specs: dict[str, str]
    price_fen: int
    market_price_fen: int | None
    low_stock_threshold: int
    on_sale: bool
    available: int
    allocated: int
    reserved: int
    sold: int
    stock_in: int


@dataclass(frozen=True)
class NewSku:
    sku_id: str
    specs: dict[str, str]
    price_fen: int
    stock: int
    low_stock_threshold: int = 0
    market_price_fen: int | None = None
    on_sale: bool = True


class SkuMissing(Exception):
    """No SKU with this id."""


def new_sku_record(sku_id: str, *, product_id: str, specs: dict[str, str], price_fen: int, stock: int,
                   low_stock_threshold: int = 0, market_price_fen: int | None = None,
                   on_sale: bool = True, product_on_sale: bool = True) -> SkuRecord:
    """A new SKU starts with all its stock available: stock_in == available == stock."""
    return SkuRecord(sku_id, product_id=product_id, specs=dict(specs), price_fen=price_fen,
                     market_price_fen=market_price_fen, low_stock_threshold=low_stock_threshold, on_sale=on_sale,
                     product_on_sale=product_on_sale, available=stock, allocated=0, reserved=0, sold=0,
                     stock_in=stock)


def to_sku(record: SkuRecord) -> Sku:
    specs = record.specs.as_dict() if isinstance(record.specs, MapAttribute) else dict(record.specs or {})
    return Sku(sku_id=record.sku_id, product_id=record.product_id, specs={k: str(v) for k, v in specs.items()},
               price_fen=int(record.price_fen),
               market_price_fen=None if record.market_price_fen is None else int(record.market_price_fen),
               low_stock_threshold=int(record.low_stock_threshold or 0), on_sale=bool(record.on_sale),
               available=int(record.available or 0), allocated=int(record.allocated or 0),
               reserved=int(record.reserved or 0), sold=int(record.sold or 0), stock_in=int(record.stock_in or 0))


def get_sku(sku_id: str, consistent: bool = False) -> Sku:
    try:
        return to_sku(SkuRecord.get(sku_id, consistent_read=consistent))
    except SkuRecord.DoesNotExist:
        raise SkuMissing(sku_id) from None


def get_skus(sku_ids: list[str], consistent: bool = False) -> list[Sku]:
    """The SKUs that exist, in the order asked: one BatchGetItem per 100 ids (PynamoDB retries
    unprocessed keys). Eventually consistent by default: a product page shows stock, it does
    not reserve it."""
    if not sku_ids:
        return []
    records = SkuRecord.batch_get(list(dict.fromkeys(sku_ids)), consistent_read=consistent)
    found = {record.sku_id: to_sku(record) for record in records}
    return [found[sku_id] for sku_id in sku_ids if sku_id in found]


def update_sku_fields(sku_id: str, product_id: str, changes: dict) -> None:
    """Change fields that no listing shows (specs, low_stock_threshold): one conditional UpdateItem.
    Fails with SkuMissing when the SKU does not exist (or belongs to another product)."""
    with condition_failure_as(SkuMissing(sku_id)):
        SkuRecord(sku_id).update(actions=sku_update_actions(changes), condition=sku_belongs_to(product_id))


def sellable(quantity: int):
    """The condition of taking `quantity` units for an order: the SKU and its product are on
    sale and that many units are available."""
    product_on_sale = SkuRecord.product_on_sale.does_not_exist() | (SkuRecord.product_on_sale == True)  # noqa: E712
    return (SkuRecord.available >= quantity) & (SkuRecord.on_sale == True) & product_on_sale  # noqa: E712


def sku_belongs_to(product_id: str):
    return SkuRecord.sku_id.exists() & (SkuRecord.product_id == product_id)


def sku_update_actions(changes: dict) -> list:
    """SET each changed field; a market price of None is removed."""
    return [getattr(SkuRecord, name).set(value) if value is not None else getattr(SkuRecord, name).remove()
            for name, value in changes.items()]
