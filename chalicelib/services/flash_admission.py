"""Entering a flash sale: cheap refusals first, then one ticket per accepted entry, queued.

The surge lands here, so the path is ordered by cost:
1. The sale, as this warm instance read it at most a second ago (services/flash_sales.py). If
   it is sold out (the consumer's flag) and the entry could only be answered `sold_out`, it is
   refused before anything else: no rate-limit bucket, no write of its own (its count joins the
   instance's window, below), one eventually consistent read of the entry's own ticket (a
   replayed request_id still answers its ticket; when the cached sale is due for a refresh,
   the sale comes in the same BatchGetItem). Nothing such an entry could do would win, so it
   has nothing to be rate-limited out of; units coming back reach it within SALE_CACHE_SECONDS.
2. Every entry that can still win meets the per-user and per-IP rate limits first (a
   conditional write each; API.md counts every request), exactly as before.
3. Refusals that need no write: SKU not in the sale, a repeated request_id (the ticket read),
   outside the window, over the per-user limit; then the user's units (a read).
4. An accepted entry is one TransactWrite (the ticket + the user's units, conditioned on the
   limit) and one SQS message; nothing here touches the stock, which only the consumer moves
   (services/flash_orders.py).
Counts for the merchant (entered, rejects by reason) are summed in the instance and written in
one UpdateItem about once a second (flash_sales.count_entry), not per request.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib import clock
from chalicelib.domain import pricing
from chalicelib.domain.flash_sales import RejectReason, SalePhase, TicketStatus, phase, ticket_id_for
from chalicelib.domain.rate_limits import FLASH_ENTRY_PER_USER, flash_entry_per_ip
from chalicelib.errors import AppError, BadRequest, Conflict, NotFound, RateLimited, ServiceUnavailable
from chalicelib.log import get_logger
from chalicelib.schemas.flash_sales import EntryBody
from chalicelib.services import checkout, flash_orders
from chalicelib.services.flash_sales import SaleRead, count_entry, sale_for_entry
from chalicelib.settings import get_settings
from chalicelib.storage import addresses, flash_tickets, rate_limits
from chalicelib.storage.flash_sales import FlashSale
from chalicelib.storage.flash_tickets import Ticket

log = get_logger(__name__)

# A healthy consumer decides a ticket within seconds; one still queued after this lost its message.
RESEND_AFTER = timedelta(seconds=10)


def enter(user_id: str, sale_id: str, body: EntryBody, client_ip: str) -> Ticket:
    """Accept the entry (202 with its ticket) or refuse it with the reason, counted for the merchant."""
    ticket_id = ticket_id_for(sale_id, user_id, body.request_id)
    read = sale_for_entry(sale_id, ticket_id)
    sale = read.sale
    if sale is None:
        raise NotFound("No such flash sale", code="flash_sale_not_found")
    try:
        if _can_only_be_sold_out(sale, body):
            return _sold_out(ticket_id, read)
        return _admit(sale, ticket_id, user_id, body, client_ip, read)
    except _Refused as refused:
        _count_reject(sale.sale_id, refused.reason)
        raise refused.error from None


class _Refused(Exception):
    def __init__(self, reason: RejectReason, error: AppError):
        super().__init__(reason.value)
        self.reason, self.error = reason, error


def _can_only_be_sold_out(sale: FlashSale, body: EntryBody) -> bool:
    """Whether the full path would answer this entry `sold_out` (or replay its ticket): the
    right SKU, a quantity within the limit, the sale running and flagged sold out."""
    return (body.sku_id == sale.sku_id and body.quantity <= sale.per_user_limit
            and phase(sale.state, sale.starts_at, sale.ends_at, sale.sold_out, clock.now()) is SalePhase.SOLD_OUT)


def _sold_out(ticket_id: str, read: SaleRead) -> Ticket:
    """Refused before the rate limits and without a write: one read, for the entry's own
    ticket (a request accepted before the sale sold out, repeated, answers its ticket)."""
    existing = _earlier_ticket(ticket_id, read)
    if existing is not None:
        return _replayed(existing)
    raise _Refused(RejectReason.SOLD_OUT, Conflict("The flash sale is sold out", code="sold_out"))


def _earlier_ticket(ticket_id: str, read: SaleRead) -> Ticket | None:
    """Half a read unit (eventually consistent; a replay racing its first request is caught by
    accept_ticket's condition), or nothing when it came with the sale's refresh."""
    return read.ticket if read.ticket_read else flash_tickets.get_ticket(ticket_id, consistent=False)


def _admit(sale: FlashSale, ticket_id: str, user_id: str, body: EntryBody, client_ip: str,
           read: SaleRead) -> Ticket:
    _check_rate(user_id, client_ip)  # every entry that can still win counts, whatever its answer (API.md)
    if body.sku_id != sale.sku_id:
        raise _Refused(RejectReason.SKU_NOT_ON_SALE, NotFound("This SKU is not in this flash sale",
                                                              code="sku_not_on_sale"))
    existing = _earlier_ticket(ticket_id, read)
    if existing is not None:
        return _replayed(existing)
    _check_open(sale, body)
    if flash_tickets.units_held(sale.sale_id, user_id) + body.quantity > sale.per_user_limit:
        raise _Refused(RejectReason.LIMIT_EXCEEDED, _limit_error(sale))
    method, address, store_id = _delivery(user_id, sale, body)
    ticket = Ticket(ticket_id=ticket_id, sale_id=sale.sale_id, user_id=user_id, sku_id=sale.sku_id,
                    quantity=body.quantity, status=TicketStatus.QUEUED.value, created_at=clock.now(),
                    delivery_method=method, address=address, store_id=store_id)
    try:
        flash_tickets.accept_ticket(ticket, sale.per_user_limit)
    except flash_tickets.TicketExists:  # the same request, racing itself
        return _replayed_or_busy(ticket_id)
    except flash_tickets.LimitReached:  # another request of this user won the race
        raise _Refused(RejectReason.LIMIT_EXCEEDED, _limit_error(sale)) from None
    _queue(ticket)
    count_entry(sale.sale_id, "entered")
    return ticket


def _check_open(sale: FlashSale, body: EntryBody) -> None:
    """The window and the quantity, then the flag (reached only if the sale started between
    _can_only_be_sold_out's look at the clock and this one)."""
    now = clock.now()
    current = phase(sale.state, sale.starts_at, sale.ends_at, sale.sold_out, now)
    if current is SalePhase.UPCOMING:
        raise _Refused(RejectReason.NOT_STARTED, Conflict("The flash sale has not started yet", code="not_started",
                                                          details=[{"starts_at": clock.to_iso(sale.starts_at)}]))
    if current is SalePhase.ENDED:
        raise _Refused(RejectReason.ENDED, Conflict("The flash sale has ended", code="ended"))
    if body.quantity > sale.per_user_limit:
        raise _Refused(RejectReason.LIMIT_EXCEEDED, _limit_error(sale))
    if current is SalePhase.SOLD_OUT:
        raise _Refused(RejectReason.SOLD_OUT, Conflict("The flash sale is sold out", code="sold_out"))


def _check_rate(user_id: str, client_ip: str) -> None:
    now, settings = clock.now(), get_settings()
    per_ip = flash_entry_per_ip(settings.flash_ip_burst, settings.flash_ip_per_second)
    for limit, key in ((FLASH_ENTRY_PER_USER, user_id), (per_ip, client_ip)):
        if not rate_limits.take_token(limit, key, now):
            raise _Refused(RejectReason.RATE_LIMITED,
                           RateLimited("Too many entries; wait a moment", retry_after_seconds=limit.retry_after_seconds))


def _limit_error(sale: FlashSale) -> Conflict:
    return Conflict(f"At most {sale.per_user_limit} per person in this flash sale", code="limit_exceeded",
                    details=[{"per_user_limit": sale.per_user_limit}])


def _delivery(user_id: str, sale: FlashSale, body: EntryBody) -> tuple[str, dict[str, Any] | None, str | None]:
    """Where the order will go, resolved now so the consumer needs nothing but the ticket."""
    item = pricing.Item(sku_id=sale.sku_id, product_id=sale.product_id, name=sale.name, specs=sale.specs,
                        price_fen=sale.price_fen, quantity=body.quantity, virtual=sale.virtual)
    method = body.delivery_method or ("pickup" if body.store_id and not sale.virtual
                                      else pricing.default_delivery_method([item]))
    pricing.check_delivery_method([item], method)
    found = None
    if method == "express" and not body.address_id:
        found = next((a for a in addresses.list_addresses(user_id) if a.is_default), None)
        if found is None:
            raise BadRequest("Express delivery needs an address_id (or a default address)", code="address_required",
                             details=[{"field": "address_id", "message": "required for express"}])
        body = body.model_copy(update={"address_id": found.address_id})
    elif method == "express":
        found = addresses.get_address(user_id, body.address_id)
    address, store_id = checkout.delivery_target(body, method, found.fields if found else None)
    return method, address, store_id


def _replayed(ticket: Ticket) -> Ticket:
    """A repeated request_id: the same ticket. A ticket still queued RESEND_AFTER after it was
    accepted has its message sent again (the first send may be what failed; on a sale still
    selling the request paid a rate-limit token like any, on a sold-out one it pays none); the
    consumer takes a ticket once however often it hears of it."""
    if ticket.status == TicketStatus.QUEUED.value and clock.now() - ticket.created_at >= RESEND_AFTER:
        flash_orders.queue_entry(ticket)
    _count_reject(ticket.sale_id, RejectReason.DUPLICATE_REQUEST)
    return ticket


def _replayed_or_busy(ticket_id: str) -> Ticket:
    """The ticket existed a moment ago; it may have been withdrawn since (its send failed)."""
    current = flash_tickets.get_ticket(ticket_id)
    if current is None:
        raise Conflict("This request_id is being handled by another request; try again", code="entry_in_progress")
    return _replayed(current)


def _queue(ticket: Ticket) -> None:
    """Send the entry; if SQS refuses, withdraw the ticket so the user may simply retry."""
    try:
        flash_orders.queue_entry(ticket)
    except Exception:  # noqa: BLE001 - any failure to queue means the entry was not accepted
        log.exception("could not queue a flash-sale entry; withdrawing its ticket", sale_id=ticket.sale_id)
        try:
            flash_tickets.withdraw_ticket(ticket)
        except Exception:  # noqa: BLE001 - a repeat of the request re-sends the still-queued ticket
            log.exception("could not withdraw the ticket; a repeat of the request queues it", sale_id=ticket.sale_id)
        raise ServiceUnavailable("The entry could not be queued; try again with the same request_id",
                                 code="queue_unavailable") from None


def _count_reject(sale_id: str, reason: RejectReason) -> None:
    log.info("flash-sale entry refused", sale_id=sale_id, reason=reason.value)
    count_entry(sale_id, f"reject_{reason.value}")


def ticket_for_user(user_id: str, ticket_id: str) -> Ticket:
    ticket = flash_tickets.get_ticket(ticket_id)
    if ticket is None or ticket.user_id != user_id:
        raise NotFound("No such ticket", code="ticket_not_found")
    return ticket
