"""Tables `flash_tickets` (one item per accepted entry) and `flash_entries` (units per user and sale).

A ticket's id is derived from (sale, user, request_id), so a repeated request finds it. The
entry item counts the units a user holds in live tickets of a sale; accepting a ticket adds to
it with a condition (`units + quantity <= per_user_limit`) in the same transaction as the
ticket put, so racing requests of one user cannot pass the limit together. A lost ticket gives
its units back.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import GetError, TransactWriteError
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.domain.flash_sales import STATS_SHARDS, stats_shard
from chalicelib.storage.base import TableMeta, table_name
from chalicelib.storage.flash_sales import FlashSale, FlashSaleRecord, get_sale, to_sale


class Waiting(GlobalSecondaryIndex):
    """Sparse, keys only: tickets not yet won or lost, by acceptance time, for the sweep that
    re-sends their messages. Keyed by one of STATS_SHARDS buckets, not by sale: a surge's
    ticket writes spread over 16 index partitions instead of queueing on one."""
    class Meta:
        index_name = "waiting"
        projection = KeysOnlyProjection()

    waiting_bucket = UnicodeAttribute(hash_key=True)
    waiting_since = UTCDateTimeAttribute(range_key=True)


class FlashTicketRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("flash_tickets")

    ticket_id = UnicodeAttribute(hash_key=True)
    sale_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    sku_id = UnicodeAttribute()
    quantity = NumberAttribute()
    status = UnicodeAttribute()  # domain.flash_sales.TicketStatus
    created_at = UTCDateTimeAttribute()
    delivery_method = UnicodeAttribute()
    address = MapAttribute(null=True)  # snapshot at entry time, like an order's
    store_id = UnicodeAttribute(null=True)
    shard = NumberAttribute(null=True)  # where its units came from, once assigned
    order_id = UnicodeAttribute(null=True)
    decided_at = UTCDateTimeAttribute(null=True)
    lost_reason = UnicodeAttribute(null=True)
    waiting_bucket = UnicodeAttribute(null=True)  # set while queued or assigned (the `waiting` index)
    waiting_since = UTCDateTimeAttribute(null=True)

    waiting = Waiting()


class FlashEntryRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("flash_entries")

    entry_id = UnicodeAttribute(hash_key=True)  # <sale_id>#<user_id>
    units = NumberAttribute(default=0)


@dataclass(frozen=True)
class Ticket:
    ticket_id: str
    sale_id: str
    user_id: str
    sku_id: str
    quantity: int
    status: str
    created_at: datetime
    delivery_method: str
    address: dict[str, Any] | None = None
    store_id: str | None = None
    shard: int | None = None
    order_id: str | None = None
    decided_at: datetime | None = None
    lost_reason: str | None = None


class TicketExists(Exception):
    """This request_id was used before: the ticket is there already."""


class LimitReached(Exception):
    """The user's live tickets for this sale already hold their limit."""


def entry_id(sale_id: str, user_id: str) -> str:
    return f"{sale_id}#{user_id}"


def to_ticket(record: FlashTicketRecord) -> Ticket:
    return Ticket(ticket_id=record.ticket_id, sale_id=record.sale_id, user_id=record.user_id, sku_id=record.sku_id,
                  quantity=int(record.quantity), status=record.status, created_at=record.created_at,
                  delivery_method=record.delivery_method,
                  address=record.address.as_dict() if record.address else None, store_id=record.store_id,
                  shard=None if record.shard is None else int(record.shard), order_id=record.order_id,
                  decided_at=record.decided_at, lost_reason=record.lost_reason)


def get_ticket(ticket_id: str, consistent: bool = True) -> Ticket | None:
    try:
        return to_ticket(FlashTicketRecord.get(ticket_id, consistent_read=consistent))
    except FlashTicketRecord.DoesNotExist:
        return None


def get_sale_and_ticket(sale_id: str, ticket_id: str) -> tuple[FlashSale | None, Ticket | None]:
    """The sale, read consistently, and one ticket, read eventually consistently, in ONE
    BatchGetItem: admission refreshes its cached sale this way, so even the entry that pays for
    the refresh makes a single read (services/flash_sales.py). A key DynamoDB leaves unprocessed
    (throttling) is read on its own, as the SDK would retry it."""
    sales, tickets = FlashSaleRecord.Meta.table_name, FlashTicketRecord.Meta.table_name
    request = {sales: {"Keys": [{"sale_id": {"S": sale_id}}], "ConsistentRead": True},
               tickets: {"Keys": [{"ticket_id": {"S": ticket_id}}], "ConsistentRead": False}}
    try:
        answer = FlashTicketRecord._get_connection().connection.dispatch("BatchGetItem", {"RequestItems": request})
    except (BotoCoreError, ClientError) as error:  # as PynamoDB's own reads: is_transient() knows it
        raise GetError(f"Failed to read the sale and the ticket: {error}", error) from error
    found, unprocessed = answer.get("Responses", {}), answer.get("UnprocessedKeys") or {}
    sale_items, ticket_items = found.get(sales, []), found.get(tickets, [])
    sale = to_sale(FlashSaleRecord.from_raw_data(sale_items[0])) if sale_items else None
    ticket = to_ticket(FlashTicketRecord.from_raw_data(ticket_items[0])) if ticket_items else None
    if sales in unprocessed:
        sale = get_sale(sale_id, consistent=True)
    if tickets in unprocessed:
        ticket = get_ticket(ticket_id, consistent=False)
    return sale, ticket


def get_tickets(ticket_ids: list[str]) -> dict[str, Ticket]:
    """Consistent reads of many tickets (one BatchGetItem per 100)."""
    if not ticket_ids:
        return {}
    return {record.ticket_id: to_ticket(record)
            for record in FlashTicketRecord.batch_get(list(dict.fromkeys(ticket_ids)), consistent_read=True)}


def units_held(sale_id: str, user_id: str) -> int:
    try:
        return int(FlashEntryRecord.get(entry_id(sale_id, user_id), consistent_read=True).units or 0)
    except FlashEntryRecord.DoesNotExist:
        return 0


def accept_ticket(ticket: Ticket, per_user_limit: int) -> None:
    """Write the queued ticket and count its units against the user's limit, together.

    Raises TicketExists (a repeated request_id) or LimitReached; nothing is written then.
    """
    units = FlashEntryRecord.units
    try:
        with TransactWrite(connection=FlashTicketRecord._get_connection().connection) as transaction:
            transaction.save(_ticket_record(ticket), condition=FlashTicketRecord.ticket_id.does_not_exist())
            transaction.update(FlashEntryRecord(entry_id(ticket.sale_id, ticket.user_id)),
                               actions=[units.add(ticket.quantity)],
                               condition=units.does_not_exist() | (units <= per_user_limit - ticket.quantity))
    except TransactWriteError as error:
        failed = [index for index, reason in enumerate(error.cancellation_reasons or [])
                  if reason and reason.code == "ConditionalCheckFailed"]
        if 0 in failed:
            raise TicketExists() from None
        if 1 in failed:
            raise LimitReached() from None
        raise


def _ticket_record(ticket: Ticket) -> FlashTicketRecord:
    return FlashTicketRecord(ticket.ticket_id, sale_id=ticket.sale_id, user_id=ticket.user_id, sku_id=ticket.sku_id,
                             quantity=ticket.quantity, status=ticket.status, created_at=ticket.created_at,
                             delivery_method=ticket.delivery_method, address=ticket.address,
                             store_id=ticket.store_id, waiting_bucket=str(stats_shard(ticket.ticket_id)),
                             waiting_since=ticket.created_at)


def decided_actions() -> list:
    """A ticket won or lost leaves the `waiting` index."""
    return [FlashTicketRecord.waiting_bucket.remove(), FlashTicketRecord.waiting_since.remove()]


def waiting_ticket_ids(accepted_before: datetime, limit_per_bucket: int) -> list[str]:
    """Tickets accepted before `accepted_before` and still undecided (one Query per bucket)."""
    ids: list[str] = []
    for bucket in range(STATS_SHARDS):
        ids += [record.ticket_id for record in FlashTicketRecord.waiting.query(
            str(bucket), FlashTicketRecord.waiting_since < accepted_before, limit=limit_per_bucket)]
    return ids


def withdraw_ticket(ticket: Ticket) -> None:
    """Undo accept_ticket when the entry could not be queued (the client is told to retry):
    delete the still-queued ticket and give its units back, together."""
    with TransactWrite(connection=FlashTicketRecord._get_connection().connection) as transaction:
        transaction.delete(FlashTicketRecord(ticket.ticket_id), condition=FlashTicketRecord.status == "queued")
        transaction.update(FlashEntryRecord(entry_id(ticket.sale_id, ticket.user_id)),
                           actions=[FlashEntryRecord.units.add(-ticket.quantity)],
                           condition=FlashEntryRecord.units >= ticket.quantity)
