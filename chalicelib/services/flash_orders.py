"""The flash-entries consumer: queued tickets become pending_payment orders, in queue order.

Per batch of messages: read the tickets (one BatchGetItem), then for each queued ticket, in
order, take its units from a stock shard (its own by hash, falling over to the next ones) or,
when every shard is empty, mark it lost; the sale's sold-out flag goes up with the last unit
taken (or with the first ticket to find none left). Then the batch's orders are written in one
transaction with one SKU update (storage/flash_transactions.py).

Every step is conditioned on the ticket's status, so a redelivered message, a second consumer
or a crash halfway changes nothing twice: an order's id is derived from its ticket's.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from chalicelib import clock, queues
from chalicelib.domain import pricing
from chalicelib.domain.flash_sales import (STALE_TICKET_AFTER_SECONDS, SaleState, TicketStatus, order_id_for_ticket,
                                           shard_order)
from chalicelib.log import get_logger
from chalicelib.schemas.flash_sales import FlashEntryMessage
from chalicelib.services import order_lifecycle
from chalicelib.services.flash_sales import forget_sale
from chalicelib.settings import get_settings
from chalicelib.storage import flash_sales, flash_tickets, flash_transactions, orders
from chalicelib.storage.flash_sales import FlashSale
from chalicelib.storage.flash_tickets import Ticket

log = get_logger(__name__)

ORDERS_PER_TRANSACTION = 40  # 2 items per order + 1 SKU update, under DynamoDB's 100
SHARD_READS = 3


@dataclass
class _SaleView:
    """What this batch knows of one sale: its terms and generation (read first), its shards."""
    sale: FlashSale
    shards: list[int]
    assigned: list[Ticket] = field(default_factory=list)
    flag_tried: bool = False  # the sold-out flag was tried in this batch


def queue_entry(ticket: Ticket) -> None:
    """Send the ticket's message to the flash-entries queue (the ticket is the whole state)."""
    queues.send_message(queues.FLASH_ENTRIES, FlashEntryMessage(ticket_id=ticket.ticket_id,
                                                                sale_id=ticket.sale_id).model_dump())


def resend_stale_tickets(limit_per_bucket: int = 50) -> dict[str, int]:
    """The safety net behind the queue: a ticket still undecided STALE_TICKET_AFTER_SECONDS after
    it was accepted lost its message (never sent, or dead-lettered after failing): send it
    again. A queued ticket of a sale that no longer sells is lost right here."""
    cutoff = clock.now() - timedelta(seconds=STALE_TICKET_AFTER_SECONDS)
    stale = flash_tickets.get_tickets(flash_tickets.waiting_ticket_ids(cutoff, limit_per_bucket))
    sales: dict[str, FlashSale | None] = {}
    outcomes: Counter[str] = Counter()
    for ticket in stale.values():
        if ticket.sale_id not in sales:
            sales[ticket.sale_id] = flash_sales.get_sale(ticket.sale_id, consistent=True)
        sale = sales[ticket.sale_id]
        if ticket.status == TicketStatus.QUEUED.value and (sale is None or sale.state != SaleState.ACTIVE.value):
            outcomes[_lose(ticket, "ended")] += 1
        elif ticket.status in (TicketStatus.QUEUED.value, TicketStatus.ASSIGNED.value):
            queue_entry(ticket)
            outcomes["resent"] += 1
    return dict(outcomes)


def process_entries(messages: list[FlashEntryMessage]) -> dict[str, int]:
    """Handle one batch; returns how many tickets were assigned, lost or seen before."""
    outcomes: Counter[str] = Counter()
    unique = list({message.ticket_id: message for message in messages}.values())  # a replay re-sends its message
    outcomes["duplicate_message"] = len(messages) - len(unique)
    tickets = flash_tickets.get_tickets([message.ticket_id for message in unique])
    views: dict[str, _SaleView | None] = {}
    for message in unique:
        ticket = tickets.get(message.ticket_id)
        if ticket is None:  # withdrawn because it could not be queued; the client was told to retry
            outcomes["missing"] += 1
            continue
        if ticket.sale_id not in views:
            views[ticket.sale_id] = _view(ticket.sale_id)
        outcomes[_decide(ticket, views[ticket.sale_id])] += 1
    for view in views.values():
        if view is not None and view.assigned:
            outcomes["won"] += _write_orders(view.sale, view.assigned)
    return {name: count for name, count in outcomes.items() if count}


def _view(sale_id: str) -> _SaleView | None:
    sale = flash_sales.get_sale(sale_id, consistent=True)  # before the shards: its generation guards the flag
    if sale is None:
        return None
    return _SaleView(sale=sale, shards=flash_sales.read_stock_shards(sale))


def _decide(ticket: Ticket, view: _SaleView | None) -> str:
    if ticket.status == TicketStatus.ASSIGNED.value:  # a crash between the two steps: finish it
        if view is not None:
            view.assigned.append(ticket)
        return "resumed"
    if ticket.status != TicketStatus.QUEUED.value:
        return "done_before"
    if view is None or view.sale.state != SaleState.ACTIVE.value:
        return _lose(ticket, "ended")
    order_id = order_id_for_ticket(ticket.ticket_id)
    try:
        shard = _take_units(ticket, view, order_id)
    except flash_transactions.TicketMoved:
        # Another delivery took it, or this very assignment committed and only its answer was
        # lost (the SDK's retry then fails the condition): either way, finish what is there.
        current = flash_tickets.get_ticket(ticket.ticket_id)
        if current is not None and current.status == TicketStatus.ASSIGNED.value:
            view.assigned.append(current)
            return "resumed"
        return "done_before"
    if shard is not None:
        view.assigned.append(_assigned(ticket, shard, order_id))
        if sum(view.shards) == 0:  # that was the last unit: admission stops accepting entries now
            _raise_sold_out_flag(view)
        return "assigned"
    if sum(view.shards) == 0:
        _raise_sold_out_flag(view)
    return _lose(ticket, "sold_out")


class ShardContention(Exception):
    """Other consumers kept emptying the shards this one chose; the batch is retried."""


def _take_units(ticket: Ticket, view: _SaleView, order_id: str) -> int | None:
    """The shard the ticket's units came from, or None when no shard has enough left.

    Shards are tried in the ticket's order as this batch last saw them; a shard found empty
    means the view is stale, so it is read again (at most SHARD_READS times)."""
    for _ in range(SHARD_READS):
        stale = False
        for shard in shard_order(ticket.ticket_id, len(view.shards)):
            if view.shards[shard] < ticket.quantity:
                continue
            try:
                flash_transactions.assign_units(ticket, shard, order_id, clock.now())
            except flash_transactions.ShardEmpty:
                stale = True
                continue
            view.shards[shard] -= ticket.quantity
            return shard
        if not stale:
            return None
        view.shards = flash_sales.read_stock_shards(view.sale)
    raise ShardContention(ticket.sale_id)


def _assigned(ticket: Ticket, shard: int, order_id: str) -> Ticket:
    return Ticket(**{**asdict(ticket), "status": TicketStatus.ASSIGNED.value, "shard": shard, "order_id": order_id})


def _lose(ticket: Ticket, reason: str) -> str:
    try:
        flash_transactions.lose_ticket(ticket, reason, clock.now())
    except flash_transactions.TicketMoved:
        return "done_before"
    return "lost"


def _raise_sold_out_flag(view: _SaleView) -> None:
    """Admission answers sold_out from the flag without a write (and without a rate-limit
    token). It is raised as soon as this batch takes the last unit it knows of, not only when a
    later ticket finds the shards empty, so fewer entries are accepted only to be lost. The
    view never counts fewer units than the shards hold unless one came back, and a return bumps
    the generation the flag is conditioned on: it is set only if no unit came back since this
    batch read the sale."""
    if view.sale.sold_out or view.flag_tried:
        return
    view.flag_tried = True  # once per batch: refused, a unit came back since the batch's read
    try:
        raised = flash_sales.mark_sold_out(view.sale.sale_id, view.sale.returned)
    except Exception:  # noqa: BLE001 - a shortcut for admission, not state: the next batch tries again
        log.exception("could not raise the sold-out flag", sale_id=view.sale.sale_id)
        return
    if raised:
        view.sale = FlashSale(**{**asdict(view.sale), "sold_out": True})
        forget_sale(view.sale.sale_id)
        log.info("flash sale sold out", sale_id=view.sale.sale_id)


def _write_orders(sale: FlashSale, assigned: list[Ticket]) -> int:
    """Write the orders of assigned tickets, a lot per transaction; one by one if some were
    written before (a redelivery). Returns how many this call wrote."""
    placed = [(ticket, _order(sale, ticket)) for ticket in assigned]
    written: list[orders.Order] = []
    for start in range(0, len(placed), ORDERS_PER_TRANSACTION):
        lot = placed[start:start + ORDERS_PER_TRANSACTION]
        try:
            flash_transactions.write_orders(sale.sku_id, lot)
            written += [order for _, order in lot]
        except flash_transactions.AllocationShort:
            log.error("flash sale: the SKU lacks allocated units for assigned tickets; the batch will "
                      "retry and then go to the dead-letter queue", sale_id=sale.sale_id, sku_id=sale.sku_id)
            raise
        except flash_transactions.TicketMoved:
            for one in lot:
                try:
                    flash_transactions.write_orders(sale.sku_id, [one])
                    written.append(one[1])
                except flash_transactions.TicketMoved:
                    pass
    for order in written:
        log.info("flash-sale order placed", order_id=order.order_id, sale_id=sale.sale_id)
        _start_pay_timer(order)
    return len(written)


def _order(sale: FlashSale, ticket: Ticket) -> orders.Order:
    item = pricing.Item(sku_id=sale.sku_id, product_id=sale.product_id, name=sale.name, specs=sale.specs,
                        price_fen=sale.price_fen, quantity=ticket.quantity, virtual=sale.virtual)
    quote = pricing.price([item], pricing.PricingContext(delivery_method=ticket.delivery_method))
    now = clock.now()
    return orders.Order(
        order_id=ticket.order_id, user_id=ticket.user_id, out_trade_no=ticket.order_id, status="pending_payment",
        request_fingerprint=f"flash:{ticket.ticket_id}", created_at=now,
        pay_deadline=now + timedelta(minutes=get_settings().flash_pay_timeout_minutes),
        delivery_method=quote.delivery_method, lines=tuple(orders.OrderLine(**asdict(line)) for line in quote.lines),
        adjustments=tuple(asdict(adjustment) for adjustment in quote.adjustments), goods_fen=quote.goods_fen,
        discount_fen=quote.discount_fen, delivery_fee_fen=quote.delivery_fee_fen, payable_fen=quote.payable_fen,
        address=ticket.address, store_id=ticket.store_id,
        flash_sale={"sale_id": sale.sale_id, "shard": ticket.shard, "ticket_id": ticket.ticket_id})


def _start_pay_timer(order: orders.Order) -> None:
    try:
        order_lifecycle.schedule_pay_deadline(order.order_id, order.pay_deadline)
    except Exception:  # noqa: BLE001 - the sweep closes it if the timer is lost
        log.exception("could not queue the pay-deadline timer; the sweep will close the order", order_id=order.order_id)
