"""Table `stores`: the chain's pickup stores (自提点), a handful of items."""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name


class StoreRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("stores")

    store_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    address = UnicodeAttribute()
    hours = UnicodeAttribute()  # e.g. "09:00-21:00", as the store shows it
    phone = UnicodeAttribute(null=True)
    sort_order = NumberAttribute(default=0)


@dataclass(frozen=True)
class Store:
    store_id: str
    name: str
    address: str
    hours: str
    phone: str | None
    sort_order: int


def _to_store(record: StoreRecord) -> Store:
    return Store(store_id=record.store_id, name=record.name, address=record.address, hours=record.hours,
                 phone=record.phone, sort_order=int(record.sort_order or 0))


def create_store(store_id: str, *, name: str, address: str, hours: str, phone: str | None = None,
                 sort_order: int = 0) -> None:
    record = StoreRecord(store_id, name=name, address=address, hours=hours, phone=phone, sort_order=sort_order)
    with condition_failure_as(ConditionFailed):
        record.save(condition=StoreRecord.store_id.does_not_exist())


def get_store(store_id: str) -> Store | None:
    try:
        return _to_store(StoreRecord.get(store_id))
    except StoreRecord.DoesNotExist:
        return None


def list_stores() -> list[Store]:
    """Every store, in display order: one Scan of a table with a handful of items."""
    return sorted((_to_store(record) for record in StoreRecord.scan()), key=lambda s: (s.sort_order, s.store_id))
