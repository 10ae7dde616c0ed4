"""The TransactWrites of a flash sale's life: a ticket takes units, its order is written, a lost
ticket gives back its place, an unpaid order gives back its unit, and the sale ends.

Turning a ticket into an order takes two transactions, so the sale's hot items are written
apart (docs/decisions.md):
1. `assign_units`: the ticket's stock shard `remaining -= quantity` (condition: enough left)
   with the ticket queued -> assigned. Concurrent consumers hit N different shard items.
2. `write_orders`: for a whole batch of assigned tickets, the orders (condition: new), the
   tickets assigned -> won, and ONE SKU update allocated -> reserved for the batch's units.
   Between the two the SKU still counts the units as allocated, so its invariant
   `stock_in == available + allocated + reserved + sold` holds throughout; a crash between
   them leaves an assigned ticket that the redelivered message finishes.
"""
from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.domain.flash_sales import SaleState, TicketStatus, stats_shard
from chalicelib.storage.base import ConditionFailed, condition_failure_as
from chalicelib.storage.flash_sales import FlashCounterRecord, FlashSale, FlashSaleRecord, stats_key, stock_key
from chalicelib.storage.flash_tickets import FlashEntryRecord, FlashTicketRecord, Ticket, decided_actions, entry_id
from chalicelib.storage.orders import Order, OrderRecord, to_record
from chalicelib.storage.skus import SkuRecord
from chalicelib.storage.transactions import StatusChanged, failed_indexes


class ShardEmpty(Exception):
    """The shard has fewer units left than the ticket wants."""


class TicketMoved(Exception):
    """The ticket is no longer in the status the step needs: another delivery handled it."""


class SaleEnded(Exception):
    """The sale is no longer selling (ending or ended): its units go back to available stock."""


class AllocationShort(Exception):
    """The SKU holds fewer allocated units than assigned tickets took from the sale's shards:
    the invariant is broken (by hand?), so this must stop and be looked at, not be skipped."""


class ShardsMoved(Exception):
    """A shard changed between the read and the draining transaction; read again."""


def _transaction() -> TransactWrite:
    return TransactWrite(connection=FlashTicketRecord._get_connection().connection)


def assign_units(ticket: Ticket, shard: int, order_id: str, now: datetime) -> None:
    """Take the ticket's units from `shard` and mark it assigned (to `order_id`)."""
    remaining, status = FlashCounterRecord.remaining, FlashTicketRecord.status
    try:
        with _transaction() as transaction:
            transaction.update(FlashCounterRecord(stock_key(ticket.sale_id, shard)),
                               actions=[remaining.add(-ticket.quantity), FlashCounterRecord.won.add(1)],
                               condition=remaining >= ticket.quantity)
            transaction.update(FlashTicketRecord(ticket.ticket_id),
                               actions=[status.set(TicketStatus.ASSIGNED.value), FlashTicketRecord.shard.set(shard),
                                        FlashTicketRecord.order_id.set(order_id), FlashTicketRecord.decided_at.set(now)],
                               condition=status == TicketStatus.QUEUED.value)
    except TransactWriteError as error:
        failed = failed_indexes(error)
        if 1 in failed:
            raise TicketMoved() from None
        if 0 in failed:
            raise ShardEmpty() from None
        raise


def write_orders(sku_id: str, placed: list[tuple[Ticket, Order]]) -> None:
    """Put the orders of assigned tickets, mark them won, and move their units allocated ->
    reserved on the SKU once for the lot. Raises TicketMoved if any of them was done before
    (the caller then writes them one by one)."""
    units = sum(ticket.quantity for ticket, _ in placed)
    status = FlashTicketRecord.status
    try:
        with _transaction() as transaction:
            for ticket, order in placed:
                transaction.save(to_record(order), condition=OrderRecord.order_id.does_not_exist())
                transaction.update(FlashTicketRecord(ticket.ticket_id),
                                   actions=[status.set(TicketStatus.WON.value)] + decided_actions(),
                                   condition=status == TicketStatus.ASSIGNED.value)
            transaction.update(SkuRecord(sku_id),
                               actions=[SkuRecord.allocated.add(-units), SkuRecord.reserved.add(units)],
                               condition=SkuRecord.allocated >= units)
    except TransactWriteError as error:
        failed = failed_indexes(error)
        sku_index = 2 * len(placed)  # the SKU update comes after the puts and the ticket updates
        if any(index < sku_index for index in failed):  # some were written before (and moved their units)
            raise TicketMoved() from None
        if sku_index in failed:
            raise AllocationShort(sku_id) from None
        raise


def lose_ticket(ticket: Ticket, reason: str, now: datetime) -> None:
    """queued -> lost, giving the user's units back (they may enter again if units return)."""
    status = FlashTicketRecord.status
    try:
        with _transaction() as transaction:
            transaction.update(FlashTicketRecord(ticket.ticket_id),
                               actions=[status.set(TicketStatus.LOST.value), FlashTicketRecord.lost_reason.set(reason),
                                        FlashTicketRecord.decided_at.set(now)] + decided_actions(),
                               condition=status == TicketStatus.QUEUED.value)
            transaction.update(FlashEntryRecord(entry_id(ticket.sale_id, ticket.user_id)),
                               actions=[FlashEntryRecord.units.add(-ticket.quantity)],
                               condition=FlashEntryRecord.units >= ticket.quantity)
            transaction.update(FlashCounterRecord(stats_key(ticket.sale_id, stats_shard(ticket.ticket_id))),
                               actions=[FlashCounterRecord.lost.add(1), FlashCounterRecord.sale_id.set(ticket.sale_id)])
    except TransactWriteError as error:
        if failed_indexes(error):
            raise TicketMoved() from None
        raise


def return_unit_to_sale(order: Order, reason: str, now: datetime) -> None:
    """Close an unpaid flash-sale order and give its units back to the sale: order
    pending_payment -> cancelled, SKU reserved -> allocated, the shard it came from `+=`, and
    the sale's sold-out flag cleared (its generation bumped), all or nothing.

    Raises StatusChanged (no longer unpaid) or SaleEnded (then release it as a normal order).
    """
    flash, line = order.flash_sale, order.lines[0]
    try:
        with _transaction() as transaction:
            transaction.update(OrderRecord(order.order_id),
                               actions=[OrderRecord.status.set("cancelled"), OrderRecord.cancelled_at.set(now),
                                        OrderRecord.cancel_reason.set(reason)],
                               condition=OrderRecord.status == "pending_payment")
            transaction.update(SkuRecord(line.sku_id),
                               actions=[SkuRecord.reserved.add(-line.quantity), SkuRecord.allocated.add(line.quantity)],
                               condition=SkuRecord.reserved >= line.quantity)
            transaction.update(FlashCounterRecord(stock_key(flash["sale_id"], flash["shard"])),
                               actions=[FlashCounterRecord.remaining.add(line.quantity)],
                               condition=FlashCounterRecord.remaining.exists())
            transaction.update(FlashSaleRecord(flash["sale_id"]),
                               actions=[FlashSaleRecord.returned.add(1), FlashSaleRecord.sold_out.remove()],
                               condition=FlashSaleRecord.state == SaleState.ACTIVE.value)
    except TransactWriteError as error:
        failed = failed_indexes(error)
        if 0 in failed:
            raise StatusChanged() from None
        if 3 in failed:
            raise SaleEnded() from None
        raise


def begin_ending(sale_id: str, now: datetime) -> bool:
    """active -> ending: from here on nothing sells, and returned units go to available stock.
    False when the sale was no longer active."""
    try:
        with condition_failure_as(ConditionFailed):
            FlashSaleRecord(sale_id).update(
                actions=[FlashSaleRecord.state.set(SaleState.ENDING.value), FlashSaleRecord.sold_out.remove(),
                         FlashSaleRecord.ending_since.set(now)],
                condition=FlashSaleRecord.state == SaleState.ACTIVE.value)
    except ConditionFailed:
        return False
    return True


def drain_shard(sale: FlashSale, shard: int, units: int) -> None:
    """Give one shard's unsold units (as read: `units`) back to the SKU's available stock.

    Raises ShardsMoved when the shard changed since the read (a consumer with an older view of
    the sale took units), SaleEnded when the sale is not ending.
    """
    try:
        with _transaction() as transaction:
            transaction.update(FlashCounterRecord(stock_key(sale.sale_id, shard)),
                               actions=[FlashCounterRecord.remaining.set(0)],
                               condition=FlashCounterRecord.remaining == units)
            transaction.update(SkuRecord(sale.sku_id),
                               actions=[SkuRecord.allocated.add(-units), SkuRecord.available.add(units)],
                               condition=SkuRecord.allocated >= units)
            transaction.update(FlashSaleRecord(sale.sale_id), actions=[FlashSaleRecord.unsold_returned.add(units)],
                               condition=FlashSaleRecord.state == SaleState.ENDING.value)
    except TransactWriteError as error:
        failed = failed_indexes(error)
        if 2 in failed:
            raise SaleEnded() from None
        if failed:
            raise ShardsMoved() from None
        raise


def finish_ending(sale_id: str, now: datetime) -> bool:
    """ending -> ended, once every shard is drained. False when it was not ending."""
    try:
        with condition_failure_as(ConditionFailed):
            FlashSaleRecord(sale_id).update(
                actions=[FlashSaleRecord.state.set(SaleState.ENDED.value), FlashSaleRecord.settled_at.set(now)],
                condition=FlashSaleRecord.state == SaleState.ENDING.value)
    except ConditionFailed:
        return False
    return True
