"""Tables `flash_sales` (one item per sale) and `flash_counters` (its sharded counters).

A sale's unsold units live in N stock shards, items `<sale_id>#stock#<k>` with `remaining`;
the sum is the truth. Each shard is its own partition key, so a hot sale's writes spread over
N items instead of queueing on one (~1,000 writes/s each; docs/decisions.md). Counts of
tickets and of rejects are written by admission about once a second per warm instance (summed
in between), the lost ones by the consumer, so with many instances they still come at surge
rate: they live on their own STATS_SHARDS items `<sale_id>#stats#<k>`, apart from the stock.

The sale item carries the sold-out flag and a `returned` generation: every unit coming back
from an unpaid order bumps it and clears the flag, and the flag is only set on a generation
that has not moved, so a return racing a sell-out can never leave a unit hidden.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.attributes import BooleanAttribute, MapAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.domain.flash_sales import STATS_SHARDS, RejectReason, SaleState, split_into_shards
from chalicelib.storage.base import ConditionFailed, FullCopyIndex, TableMeta, condition_failure_as, table_name
from chalicelib.storage.skus import SkuRecord
from chalicelib.storage.transactions import failed_indexes


class ByState(FullCopyIndex):
    """Sales by state and end time: the public list and the end-of-sale sweep read `active`."""
    class Meta(FullCopyIndex.Meta):
        index_name = "by_state"

    state = UnicodeAttribute(hash_key=True)
    ends_at = UTCDateTimeAttribute(range_key=True)


class FlashSaleRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("flash_sales")

    sale_id = UnicodeAttribute(hash_key=True)
    sku_id = UnicodeAttribute()
    product_id = UnicodeAttribute()
    name = UnicodeAttribute()
    specs = MapAttribute(default=dict)
    virtual = BooleanAttribute(default=False)
    price_fen = NumberAttribute()
    original_price_fen = NumberAttribute()
    quantity = NumberAttribute()
    per_user_limit = NumberAttribute()
    starts_at = UTCDateTimeAttribute()
    ends_at = UTCDateTimeAttribute()
    shards = NumberAttribute()
    state = UnicodeAttribute()
    sold_out = BooleanAttribute(null=True)
    returned = NumberAttribute(default=0)  # generation: units ever returned by unpaid orders
    created_at = UTCDateTimeAttribute()
    ending_since = UTCDateTimeAttribute(null=True)
    settled_at = UTCDateTimeAttribute(null=True)
    unsold_returned = NumberAttribute(null=True)  # units given back to the SKU when it ended

    by_state = ByState()


class FlashCounterRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("flash_counters")

    counter_id = UnicodeAttribute(hash_key=True)
    sale_id = UnicodeAttribute()
    remaining = NumberAttribute(null=True)  # stock shards: units not yet taken
    won = NumberAttribute(null=True)        # stock shards: tickets that took units here
    entered = NumberAttribute(null=True)    # stats shards: tickets accepted
    lost = NumberAttribute(null=True)       # stats shards: tickets lost
    # stats shards: rejects by reason (top-level numbers, so one ADD counts one)
    reject_not_started = NumberAttribute(null=True)
    reject_ended = NumberAttribute(null=True)
    reject_sold_out = NumberAttribute(null=True)
    reject_limit_exceeded = NumberAttribute(null=True)
    reject_rate_limited = NumberAttribute(null=True)
    reject_sku_not_on_sale = NumberAttribute(null=True)
    reject_duplicate_request = NumberAttribute(null=True)


@dataclass(frozen=True)
class FlashSale:
    sale_id: str
    sku_id: str
    product_id: str
    name: str
    specs: dict[str, str]
    virtual: bool
    price_fen: int
    original_price_fen: int
    quantity: int
    per_user_limit: int
    starts_at: datetime
    ends_at: datetime
    shards: int
    state: str
    sold_out: bool
    returned: int
    created_at: datetime
    settled_at: datetime | None = None
    unsold_returned: int | None = None


@dataclass(frozen=True)
class SaleCounts:
    remaining: int
    remaining_by_shard: tuple[int, ...]
    won: int
    entered: int
    lost: int
    rejects: dict[str, int]

    @property
    def queued(self) -> int:
        return max(0, self.entered - self.won - self.lost)


class SaleMissing(Exception):
    pass


class SkuShort(Exception):
    """The SKU is missing, off sale, or has fewer units available than the sale needs."""


def stock_key(sale_id: str, shard: int) -> str:
    return f"{sale_id}#stock#{shard:02d}"


def stats_key(sale_id: str, shard: int) -> str:
    return f"{sale_id}#stats#{shard:02d}"


def to_sale(record: FlashSaleRecord) -> FlashSale:
    specs = record.specs.as_dict() if isinstance(record.specs, MapAttribute) else dict(record.specs or {})
    return FlashSale(
        sale_id=record.sale_id, sku_id=record.sku_id, product_id=record.product_id, name=record.name,
        specs={k: str(v) for k, v in specs.items()}, virtual=bool(record.virtual), price_fen=int(record.price_fen),
        original_price_fen=int(record.original_price_fen), quantity=int(record.quantity),
        per_user_limit=int(record.per_user_limit), starts_at=record.starts_at, ends_at=record.ends_at,
        shards=int(record.shards), state=record.state, sold_out=bool(record.sold_out),
        returned=int(record.returned or 0), created_at=record.created_at, settled_at=record.settled_at,
        unsold_returned=None if record.unsold_returned is None else int(record.unsold_returned))


def create_sale(sale: FlashSale) -> None:
    """Carve the sale's units out of the SKU (available -> allocated) and write the sale with its
    stock shards, in one transaction. Raises SkuShort when the SKU cannot give them, and
    ConditionFailed when a sale with this id exists."""
    try:
        with TransactWrite(connection=FlashSaleRecord._get_connection().connection) as transaction:
            transaction.save(_sale_record(sale), condition=FlashSaleRecord.sale_id.does_not_exist())
            for shard, units in enumerate(split_into_shards(sale.quantity, sale.shards)):
                transaction.save(FlashCounterRecord(stock_key(sale.sale_id, shard), sale_id=sale.sale_id,
                                                    remaining=units, won=0),
                                 condition=FlashCounterRecord.counter_id.does_not_exist())
            transaction.update(SkuRecord(sale.sku_id),
                               actions=[SkuRecord.available.add(-sale.quantity), SkuRecord.allocated.add(sale.quantity)],
                               condition=(SkuRecord.available >= sale.quantity) & (SkuRecord.on_sale == True))  # noqa: E712
    except TransactWriteError as error:
        failed = failed_indexes(error)
        if 0 in failed:
            raise ConditionFailed(f"sale {sale.sale_id} exists") from None
        if failed:  # the SKU update is the last item
            raise SkuShort(sale.sku_id) from None
        raise


def _sale_record(sale: FlashSale) -> FlashSaleRecord:
    return FlashSaleRecord(
        sale.sale_id, sku_id=sale.sku_id, product_id=sale.product_id, name=sale.name, specs=dict(sale.specs),
        virtual=sale.virtual, price_fen=sale.price_fen, original_price_fen=sale.original_price_fen,
        quantity=sale.quantity, per_user_limit=sale.per_user_limit, starts_at=sale.starts_at, ends_at=sale.ends_at,
        shards=sale.shards, state=sale.state, returned=0, created_at=sale.created_at)


def get_sale(sale_id: str, consistent: bool = False) -> FlashSale | None:
    try:
        return to_sale(FlashSaleRecord.get(sale_id, consistent_read=consistent))
    except FlashSaleRecord.DoesNotExist:
        return None


def list_sales(state: str, limit: int, cursor: dict[str, Any] | None,
               ending_after: datetime | None = None) -> tuple[list[FlashSale], dict[str, Any] | None]:
    """Sales in `state`, soonest end first (optionally only those ending after a moment)."""
    condition = FlashSaleRecord.ends_at > ending_after if ending_after else None
    results = FlashSaleRecord.by_state.query(state, condition, limit=limit, last_evaluated_key=cursor)
    return [to_sale(record) for record in results], results.last_evaluated_key


def due_sale_ids(now: datetime, limit: int) -> list[str]:
    """Sales to end: active ones past their end time, and any left `ending` (interrupted)."""
    due = FlashSaleRecord.by_state.query(SaleState.ACTIVE.value, FlashSaleRecord.ends_at <= now, limit=limit)
    ending = FlashSaleRecord.by_state.query(SaleState.ENDING.value, limit=limit)
    return [record.sale_id for record in due] + [record.sale_id for record in ending]


def update_sale(sale_id: str, changes: dict[str, Any], *, now: datetime, before_start: bool) -> FlashSale:
    """Change the sale's terms. Conditions: still active and not past its end at `now` (a sale
    the sweep has not ended yet cannot be reopened); and not started, when `before_start`.
    Raises ConditionFailed."""
    condition = (FlashSaleRecord.state == SaleState.ACTIVE.value) & (FlashSaleRecord.ends_at > now)
    if before_start:
        condition &= FlashSaleRecord.starts_at > now
    record = FlashSaleRecord(sale_id)
    with condition_failure_as(ConditionFailed):
        record.update(actions=[getattr(FlashSaleRecord, name).set(value) for name, value in changes.items()],
                      condition=condition)
    return to_sale(record)


def mark_sold_out(sale_id: str, seen_generation: int) -> bool:
    """Set the sold-out flag, unless a unit came back since the caller read `seen_generation`."""
    try:
        with condition_failure_as(ConditionFailed):
            FlashSaleRecord(sale_id).update(
                actions=[FlashSaleRecord.sold_out.set(True)],
                condition=(FlashSaleRecord.returned == seen_generation)
                & (FlashSaleRecord.state == SaleState.ACTIVE.value))
    except ConditionFailed:
        return False
    return True


def read_stock_shard(sale_id: str, shard: int) -> int:
    try:
        return int(FlashCounterRecord.get(stock_key(sale_id, shard), consistent_read=True).remaining or 0)
    except FlashCounterRecord.DoesNotExist:
        return 0


def read_stock_shards(sale: FlashSale) -> list[int]:
    """Units left per shard, read consistently (one BatchGetItem)."""
    keys = [stock_key(sale.sale_id, shard) for shard in range(sale.shards)]
    found = {record.counter_id: int(record.remaining or 0)
             for record in FlashCounterRecord.batch_get(keys, consistent_read=True)}
    return [found.get(key, 0) for key in keys]


def read_counts(sale: FlashSale) -> SaleCounts:
    """Every counter of the sale, summed (one BatchGetItem of shards + stats items)."""
    stock_keys = [stock_key(sale.sale_id, shard) for shard in range(sale.shards)]
    keys = stock_keys + [stats_key(sale.sale_id, shard) for shard in range(STATS_SHARDS)]
    records = {record.counter_id: record for record in FlashCounterRecord.batch_get(keys, consistent_read=True)}
    by_shard = tuple(int(records[key].remaining or 0) if key in records else 0 for key in stock_keys)
    rejects: dict[str, int] = {reason.value: 0 for reason in RejectReason}
    total = {"won": 0, "entered": 0, "lost": 0}
    for record in records.values():
        for name in total:
            total[name] += int(getattr(record, name) or 0)
        for reason in RejectReason:
            rejects[reason.value] += int(getattr(record, f"reject_{reason.value}") or 0)
    return SaleCounts(remaining=sum(by_shard), remaining_by_shard=by_shard, rejects=rejects, **total)


def remaining_of(sales: list[FlashSale]) -> dict[str, int]:
    """Units left per sale, for a list page (one eventually consistent BatchGetItem)."""
    keys = [stock_key(sale.sale_id, shard) for sale in sales for shard in range(sale.shards)]
    remaining = {sale.sale_id: 0 for sale in sales}
    for record in FlashCounterRecord.batch_get(keys) if keys else []:
        remaining[record.sale_id] += int(record.remaining or 0)
    return remaining


COUNT_NAMES = frozenset({"entered"} | {f"reject_{reason.value}" for reason in RejectReason})


def add_counts(sale_id: str, shard: int, counts: dict[str, int]) -> None:
    """Add a batch of entry counts to one stats item, in one UpdateItem: `entered` (tickets
    accepted) and `reject_<reason>` (refusals by RejectReason)."""
    unknown = set(counts) - COUNT_NAMES
    if unknown:
        raise ValueError(f"not a flash-sale count: {sorted(unknown)}")
    actions = [getattr(FlashCounterRecord, name).add(n) for name, n in sorted(counts.items()) if n]
    if actions:
        FlashCounterRecord(stats_key(sale_id, shard)).update(
            actions=actions + [FlashCounterRecord.sale_id.set(sale_id)])
