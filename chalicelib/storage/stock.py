"""Table `stock_movements`, and stock changes made by people and systems (not orders).

A movement (merchant adjustment or POS/warehouse sync item) is recorded in the same
TransactWrite that changes the SKU's counters, so the record and the change cannot part.
A sync item's movement key is `sync#<sync_id>`, conditioned on not existing: a repeated sync
applies nothing twice, even item by item after a partial failure.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.storage.base import TableMeta, table_name
from chalicelib.storage.skus import SkuRecord


class StockMovementRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("stock_movements")

    sku_id = UnicodeAttribute(hash_key=True)
    movement_key = UnicodeAttribute(range_key=True)  # "adj#<time>#<id>" or "sync#<sync_id>"
    delta = NumberAttribute()  # change of available and of stock_in
    reason = UnicodeAttribute()
    source = UnicodeAttribute()  # admin username, or the sync's source system
    available_before = NumberAttribute()
    created_at = UTCDateTimeAttribute()


@dataclass(frozen=True)
class Movement:
    sku_id: str
    movement_key: str
    delta: int
    reason: str
    source: str
    available_before: int
    created_at: datetime


class SkuNotFound(Exception):
    pass


class WouldGoNegative(Exception):
    """The change would take available below zero (units reserved or sold cannot be removed)."""


class AvailableChanged(Exception):
    """available is no longer what the change was computed from (an absolute count raced)."""


class AlreadyApplied(Exception):
    """This movement key was applied before (a repeated sync)."""


def apply_movement(movement: Movement) -> None:
    """Record the movement and move `available` and `stock_in` by its delta, all or nothing.

    Conditions: the movement key is new; the SKU exists with `available == available_before`
    (so an absolute count is exact, and a delta is applied to the value it was checked
    against); the result is not negative.
    """
    if movement.available_before + movement.delta < 0:
        raise WouldGoNegative()
    record = StockMovementRecord(movement.sku_id, movement.movement_key, delta=movement.delta,
                                 reason=movement.reason, source=movement.source,
                                 available_before=movement.available_before, created_at=movement.created_at)
    try:
        with TransactWrite(connection=SkuRecord._get_connection().connection) as transaction:
            transaction.save(record, condition=StockMovementRecord.movement_key.does_not_exist())
            transaction.update(SkuRecord(movement.sku_id),
                               actions=[SkuRecord.available.add(movement.delta),
                                        SkuRecord.stock_in.add(movement.delta)],
                               condition=SkuRecord.available == movement.available_before)
    except TransactWriteError as error:
        reasons = error.cancellation_reasons or []
        if len(reasons) > 0 and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
            raise AlreadyApplied() from None
        if len(reasons) > 1 and reasons[1] is not None and reasons[1].code == "ConditionalCheckFailed":
            raise AvailableChanged() from None
        raise


def current_available(sku_id: str) -> int:
    try:
        return int(SkuRecord.get(sku_id, consistent_read=True, attributes_to_get=["available"]).available)
    except SkuRecord.DoesNotExist:
        raise SkuNotFound() from None
