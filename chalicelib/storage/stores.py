"""Tables `stores` (the chain's pickup stores, 自提点: a handful of items, with their coordinates)
and `store_stock` (units on each store's shelf per SKU, as the store's POS reports them).

A store's stock is the POS's count, kept in step by the stock sync (`POST /v1/admin/stock-sync`
with `store_id`): an absolute count or a delta per SKU, applied once per sync id (a stock movement
keyed `store#<store_id>#<sku_id>` / `sync#<sync_id>` in the same transaction). It tells a buyer
which nearby store has the goods; online orders draw on the SKU's own counters, not on a shelf.
"""
from __future__ import annotations

from dataclasses import dataclass

from datetime import datetime

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name, version_as_read


class StoreRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("stores")

    store_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    address = UnicodeAttribute()
    hours = UnicodeAttribute()  # e.g. "09:00-21:00", as the store shows it
    phone = UnicodeAttribute(null=True)
    sort_order = NumberAttribute(default=0)
    lat = NumberAttribute(null=True)  # WGS-84 degrees (what wx.getLocation answers with type "wgs84")
    lng = NumberAttribute(null=True)
    hidden = BooleanAttribute(null=True)  # taken off the buyers' list (orders naming it keep it)
    version = NumberAttribute(null=True)  # bumped by each merchant edit: edits are conditioned on it


class StoreStockRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("store_stock")

    store_id = UnicodeAttribute(hash_key=True)
    sku_id = UnicodeAttribute(range_key=True)
    units = NumberAttribute()
    updated_at = UTCDateTimeAttribute()


@dataclass(frozen=True)
class Store:
    store_id: str
    name: str
    address: str
    hours: str
    phone: str | None
    sort_order: int
    lat: float | None = None
    lng: float | None = None
    hidden: bool = False
    version: int = 0


def _to_store(record: StoreRecord) -> Store:
    return Store(store_id=record.store_id, name=record.name, address=record.address, hours=record.hours,
                 phone=record.phone, sort_order=int(record.sort_order or 0),
                 lat=float(record.lat) if record.lat is not None else None,
                 lng=float(record.lng) if record.lng is not None else None, hidden=bool(record.hidden),
                 version=int(record.version or 0))


def create_store(store_id: str, *, name: str, address: str, hours: str, phone: str | None = None,
                 sort_order: int = 0, lat: float | None = None, lng: float | None = None,
                 hidden: bool | None = None) -> None:
    record = StoreRecord(store_id, name=name, address=address, hours=hours, phone=phone, sort_order=sort_order,
                         lat=lat, lng=lng, hidden=hidden or None)
    with condition_failure_as(ConditionFailed):
        record.save(condition=StoreRecord.store_id.does_not_exist())


def get_store(store_id: str, consistent: bool = False) -> Store | None:
    try:
        return _to_store(StoreRecord.get(store_id, consistent_read=consistent))
    except StoreRecord.DoesNotExist:
        return None


def list_stores(include_hidden: bool = False) -> list[Store]:
    """Every store (hidden ones only when asked), in display order: one Scan of a table with a
    handful of items."""
    return sorted((store for store in map(_to_store, StoreRecord.scan()) if include_hidden or not store.hidden),
                  key=lambda s: (s.sort_order, s.store_id))


_EDITABLE = ("name", "address", "hours", "phone", "sort_order", "lat", "lng", "hidden")


def update_store(store: Store, changes: dict) -> Store:
    """Change a store as read (condition: its version; ConditionFailed otherwise). A None value
    removes an optional field (phone)."""
    actions = [StoreRecord.version.set(store.version + 1)]
    for name, value in changes.items():
        if name not in _EDITABLE:
            raise ValueError(f"not editable: {name}")
        attribute = getattr(StoreRecord, name)
        actions.append(attribute.set(value) if value is not None else attribute.remove())
    record = StoreRecord(store.store_id)
    with condition_failure_as(ConditionFailed):
        record.update(actions=actions, condition=version_as_read(StoreRecord, store.version))
    return _to_store(record)


class StoreSyncAlreadyApplied(Exception):
    """This sync id was applied to this store's SKU before."""


class StoreStockWouldGoNegative(Exception):
    pass


def shelf_units(store_ids: list[str], sku_id: str) -> dict[str, int]:
    """Units of `sku_id` on each store's shelf (stores the POS never reported are absent): one
    BatchGetItem."""
    from chalicelib.storage.batch_get import batch_get_raw, table_key

    if not store_ids:
        return {}
    keys = [table_key(StoreStockRecord, store_id, sku_id) for store_id in store_ids]
    found = batch_get_raw(keys, StoreStockRecord._get_connection().connection)
    return {item["store_id"]["S"]: int(item["units"]["N"]) for item in found.get(StoreStockRecord.Meta.table_name, [])}


def sync_shelf(store_id: str, sku_id: str, sync_id: str, source: str, *, delta: int | None, absolute: int | None,
               now: datetime) -> int:
    """Apply one POS count to the store's shelf, once per sync id: the movement put (condition: new)
    and the shelf write in one transaction; a delta never takes the shelf below zero. The new units."""
    from chalicelib.storage.stock import StockMovementRecord

    current = _shelf(store_id, sku_id)
    new_units = absolute if absolute is not None else (current or 0) + (delta or 0)
    if new_units < 0:
        raise StoreStockWouldGoNegative()
    movement = StockMovementRecord(f"store#{store_id}#{sku_id}", f"sync#{sync_id}", delta=new_units - (current or 0),
                                   reason=f"sync:{source}", source=source, available_before=current or 0,
                                   created_at=now)
    shelf = StoreStockRecord(store_id, sku_id, units=new_units, updated_at=now)
    as_read = (StoreStockRecord.sku_id.does_not_exist() if current is None else StoreStockRecord.units == current)
    try:
        with TransactWrite(connection=StoreStockRecord._get_connection().connection) as transaction:
            transaction.save(movement, condition=StockMovementRecord.movement_key.does_not_exist())
            transaction.save(shelf, condition=as_read)
    except TransactWriteError as error:
        reasons = error.cancellation_reasons or []
        if reasons and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
            raise StoreSyncAlreadyApplied() from None
        raise ConditionFailed("the shelf changed while syncing") from error
    return new_units


def _shelf(store_id: str, sku_id: str) -> int | None:
    try:
        return int(StoreStockRecord.get(store_id, sku_id, consistent_read=True).units)
    except StoreStockRecord.DoesNotExist:
        return None
