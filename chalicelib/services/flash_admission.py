"""Entering a flash sale: rate limits and cheap refusals first, then one ticket per accepted entry, queued.

The surge lands here, so the path is ordered by cost. The per-user and per-IP rate limits come
first (a conditional write each; API.md wants every request counted, and they are what stops a
hammering client). Then refusals that need no write, from the sale as this warm instance last
read it (once a second): SKU not in the sale, a repeated request_id (one read of the ticket,
whose id is derived from it), outside the window, over the per-user limit, sold out. Then the
user's units (a read). An accepted entry is one TransactWrite (the ticket + the user's units,
conditioned on the limit) and one SQS message; nothing here touches the stock, which only the
consumer moves (services/flash_orders.py).
"""
from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from chalicelib import clock
from chalicelib.domain import pricing
from chalicelib.domain.flash_sales import STATS_SHARDS, RejectReason, SalePhase, TicketStatus, phase, ticket_id_for
from chalicelib.domain.rate_limits import FLASH_ENTRY_PER_USER, flash_entry_per_ip
from chalicelib.errors import AppError, BadRequest, Conflict, NotFound, RateLimited, ServiceUnavailable
from chalicelib.log import get_logger
from chalicelib.schemas.flash_sales import EntryBody
from chalicelib.services import checkout, flash_orders
from chalicelib.services.flash_sales import cached_sale
from chalicelib.settings import get_settings
from chalicelib.storage import addresses, flash_sales, flash_tickets, rate_limits
from chalicelib.storage.flash_sales import FlashSale
from chalicelib.storage.flash_tickets import Ticket

log = get_logger(__name__)

# A healthy consumer decides a ticket within seconds; one still queued after this lost its message.
RESEND_AFTER = timedelta(seconds=10)

def enter(user_id: str, sale_id: str, body: EntryBody, client_ip: str) -> Ticket:
    """Accept the entry (202 with its ticket) or refuse it with the reason, counted for the merchant."""
    sale = cached_sale(sale_id)
    if sale is None:
        raise NotFound("No such flash sale", code="flash_sale_not_found")
    ticket_id = ticket_id_for(sale_id, user_id, body.request_id)
    try:
        return _admit(sale, ticket_id, user_id, body, client_ip)
    except _Refused as refused:
        _count_reject(sale.sale_id, refused.reason)
        raise refused.error from None


class _Refused(Exception):
    def __init__(self, reason: RejectReason, error: AppError):
        super().__init__(reason.value)
        self.reason, self.error = reason, error


def _admit(sale: FlashSale, ticket_id: str, user_id: str, body: EntryBody, client_ip: str) -> Ticket:
    _check_rate(user_id, client_ip)  # every entry request counts, whatever its answer (API.md)
    if body.sku_id != sale.sku_id:
        raise _Refused(RejectReason.SKU_NOT_ON_SALE, NotFound("This SKU is not in this flash sale",
                                                              code="sku_not_on_sale"))
    # Half a read unit: a replay racing its first request is caught by accept_ticket's condition.
    existing = flash_tickets.get_ticket(ticket_id, consistent=False)
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
    _count_entered(sale)
    return ticket


def _check_open(sale: FlashSale, body: EntryBody) -> None:
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
    if method == "express" and not body.address_id:
        default = next((a for a in addresses.list_addresses(user_id) if a.is_default), None)
        if default is None:
            raise BadRequest("Express delivery needs an address_id (or a default address)", code="address_required",
                             details=[{"field": "address_id", "message": "required for express"}])
        body = body.model_copy(update={"address_id": default.address_id})
    address, store_id = checkout.delivery_target(user_id, body, method)
    return method, address, store_id


def _replayed(ticket: Ticket) -> Ticket:
    """A repeated request_id: the same ticket. A ticket still queued RESEND_AFTER after it was
    accepted has its message sent again (the first send may be what failed; the request paid a
    rate-limit token like any); the consumer takes a ticket once however often it hears of it."""
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


def _count_entered(sale: FlashSale) -> None:
    """Counters are the merchant's view, not state: a failure here must not fail the entry."""
    try:
        flash_sales.count_entered(sale.sale_id, _any_stats_shard())
    except Exception:  # noqa: BLE001
        log.exception("could not count an entry", sale_id=sale.sale_id)


def _count_reject(sale_id: str, reason: RejectReason) -> None:
    log.info("flash-sale entry refused", sale_id=sale_id, reason=reason.value)
    try:
        flash_sales.count_reject(sale_id, _any_stats_shard(), reason)
    except Exception:  # noqa: BLE001 - as _count_entered
        log.exception("could not count a reject", sale_id=sale_id)


def _any_stats_shard() -> int:
    """Random, not by user: one user hammering must spread over the items too."""
    return random.randrange(STATS_SHARDS)


def ticket_for_user(user_id: str, ticket_id: str) -> Ticket:
    ticket = flash_tickets.get_ticket(ticket_id)
    if ticket is None or ticket.user_id != user_id:
        raise NotFound("No such ticket", code="ticket_not_found")
    return ticket
