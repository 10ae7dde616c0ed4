"""Flash sales for the merchant (create, change, stop, watch) and the buyer's list.

Creating a sale carves its units out of the SKU (available -> allocated) in the same
transaction as the sale and its stock shards; ending it (at `ends_at`, by the sweep, or by
`stop`) gives the unsold ones back (allocated -> available).
"""
from __future__ import annotations

import hashlib
import random
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from time import monotonic  # a name of this module, so tests can move the clock of the caches

from chalicelib import clock
from chalicelib.domain import cursors
from chalicelib.domain.flash_sales import STATS_SHARDS, SaleState, phase
from chalicelib.errors import BadRequest, Conflict, NotFound
from chalicelib.log import get_logger
from chalicelib.schemas.flash_sales import (AdminFlashSaleOut, CreateFlashSaleBody, FlashSaleOut, UpdateFlashSaleBody)
from chalicelib.settings import get_settings
from chalicelib.storage import flash_sales, flash_tickets, flash_transactions, products, skus
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.flash_sales import FlashSale, SaleCounts
from chalicelib.storage.flash_tickets import Ticket

log = get_logger(__name__)

SETTLE_ATTEMPTS = 5
# A warm function keeps what it read of a sale this long: the terms and the sold-out flag are
# read once per second per instance instead of once per request (the surge's hottest read).
# The read is strongly consistent, so this is also the bound on how stale the sold-out state an
# instance answers from can be: a unit coming back (which clears the flag) is seen by every
# instance within SALE_CACHE_SECONDS.
SALE_CACHE_SECONDS = 1.0
_sale_cache: dict[str, tuple[float, FlashSale | None]] = {}
# Entry counts (accepted, rejects by reason) are summed per sale in the instance and written
# to a stats item at most once per COUNT_FLUSH_SECONDS, by whichever request comes then.
COUNT_FLUSH_SECONDS = 1.0
_counts_lock = threading.Lock()
_pending_counts: dict[str, Counter[str]] = {}
_counts_since: dict[str, float] = {}


@dataclass(frozen=True)
class SaleRead:
    """What admission knows of a sale: as cached, or just read (and the entry's ticket with it)."""
    sale: FlashSale | None
    ticket: Ticket | None = None
    ticket_read: bool = False  # True when `ticket` was read with the sale (None: there is none)


def sale_for_entry(sale_id: str, ticket_id: str) -> SaleRead:
    """The sale as this instance read it at most SALE_CACHE_SECONDS ago. When it must be read
    again, the entry's ticket is read in the same call (one BatchGetItem): admission would read
    it anyway, so the request that refreshes the cache still makes one read, not two."""
    hit = _sale_cache.get(sale_id)
    if hit is not None and monotonic() - hit[0] < SALE_CACHE_SECONDS:
        return SaleRead(hit[1])
    sale, ticket = flash_tickets.get_sale_and_ticket(sale_id, ticket_id)
    if len(_sale_cache) > 1000:
        _sale_cache.clear()
    _sale_cache[sale_id] = (monotonic(), sale)
    return SaleRead(sale, ticket, ticket_read=True)


def forget_sale(sale_id: str | None = None) -> None:
    """Drop the cached sale (all, with None): after this instance changed it. With None, the
    instance forgets every sale, unwritten entry counts included (a fresh instance; tests)."""
    if sale_id is None:
        _sale_cache.clear()
        with _counts_lock:
            _pending_counts.clear()
            _counts_since.clear()
    else:
        _sale_cache.pop(sale_id, None)


def count_entry(sale_id: str, name: str) -> None:
    """Count one entry of the sale: `entered` or `reject_<reason>`. Summed in the instance and
    written (one UpdateItem on a random stats item, all reasons at once) by the first count
    COUNT_FLUSH_SECONDS or more after the window's first, so a surge costs the stats items one
    write per second per instance, not one per entry. The price: an instance's last window
    waits for its next entry of the sale (or an admin view it serves), and is lost if the
    instance is recycled first; in a surge that is about a second of its entries."""
    now = monotonic()
    with _counts_lock:
        _pending_counts.setdefault(sale_id, Counter())[name] += 1
        since = _counts_since.setdefault(sale_id, now)
        if now - since < COUNT_FLUSH_SECONDS:
            return
        due = _pending_counts.pop(sale_id)
        _counts_since.pop(sale_id)
    _write_counts(sale_id, due)


def flush_counts(sale_id: str) -> None:
    """Write this instance's unwritten counts of the sale now (before the merchant reads them)."""
    with _counts_lock:
        due = _pending_counts.pop(sale_id, None)
        _counts_since.pop(sale_id, None)
    if due:
        _write_counts(sale_id, due)


def _write_counts(sale_id: str, counts: Counter[str]) -> None:
    """Counters are the merchant's view, not state: a failure must not fail the entry; the
    counts wait for the next window instead."""
    try:
        flash_sales.add_counts(sale_id, random.randrange(STATS_SHARDS), dict(counts))
    except Exception:  # noqa: BLE001
        log.exception("could not write entry counts; keeping them for the next window", sale_id=sale_id)
        with _counts_lock:
            _pending_counts.setdefault(sale_id, Counter()).update(counts)
            _counts_since.setdefault(sale_id, monotonic())


def create_sale(body: CreateFlashSaleBody, sale_id: str | None = None) -> tuple[AdminFlashSaleOut, bool]:
    """Create the sale (True), or answer the one this request_id made before (False).
    `sale_id` is for the demo seed (a fixed id makes seeding idempotent)."""
    sale_id = sale_id or (_sale_id_for(body.request_id) if body.request_id else None)
    if sale_id:
        existing = flash_sales.get_sale(sale_id, consistent=True)
        if existing is not None:
            return _replayed_sale(existing, body), False
    return _create_sale(body, sale_id), True


def _sale_id_for(request_id: str) -> str:
    return "fs-" + hashlib.sha256(f"flash-sale:{request_id}".encode()).hexdigest()[:20]


def _replayed_sale(sale: FlashSale, body: CreateFlashSaleBody) -> AdminFlashSaleOut:
    if (sale.sku_id, sale.quantity, sale.price_fen) != (body.sku_id, body.quantity, body.price_fen):
        raise Conflict("This request_id was already used for a different sale", code="request_id_reused")
    return admin_view(sale.sale_id)


def _create_sale(body: CreateFlashSaleBody, sale_id: str | None) -> AdminFlashSaleOut:
    now = clock.now()
    if body.ends_at <= now:
        raise BadRequest("The sale would end before it starts selling", code="validation_error",
                         details=[{"field": "ends_at", "message": "must be in the future"}])
    try:
        sku = skus.get_sku(body.sku_id, consistent=True)
        product = products.get_product(sku.product_id)
    except (skus.SkuMissing, products.ProductMissing):
        raise NotFound("No such SKU", code="sku_not_found") from None
    if not (product.on_sale and sku.on_sale):
        raise Conflict("The product or SKU is off sale", code="product_unavailable",
                       details=[{"sku_id": sku.sku_id, "product_id": product.product_id}])
    sale = FlashSale(sale_id=sale_id or f"fs-{uuid.uuid4().hex[:20]}", sku_id=sku.sku_id, product_id=sku.product_id,
                     name=product.name, specs=dict(sku.specs), virtual=product.virtual, price_fen=body.price_fen,
                     original_price_fen=sku.price_fen, quantity=body.quantity, per_user_limit=body.per_user_limit,
                     starts_at=body.starts_at, ends_at=body.ends_at, shards=body.shards,
                     state=SaleState.ACTIVE.value, sold_out=False, returned=0, created_at=now)
    try:
        flash_sales.create_sale(sale)
    except ConditionFailed:  # the same request_id, racing itself
        return _replayed_sale(flash_sales.get_sale(sale.sale_id, consistent=True), body)
    except flash_sales.SkuShort:
        current = skus.get_sku(body.sku_id, consistent=True)
        raise Conflict("The SKU has not enough available stock for the sale", code="insufficient_stock",
                       details=[{"sku_id": sku.sku_id, "requested": body.quantity,
                                 "available": current.available if current.on_sale else 0}]) from None
    log.info("flash sale created", sale_id=sale.sale_id, sku_id=sale.sku_id, quantity=sale.quantity)
    return admin_view(sale.sale_id)


def update_sale(sale_id: str, body: UpdateFlashSaleBody) -> AdminFlashSaleOut:
    sale = _get(sale_id)
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        return admin_view(sale_id)
    now = clock.now()
    starts, ends = changes.get("starts_at", sale.starts_at), changes.get("ends_at", sale.ends_at)
    if ends <= starts or ends <= now:
        raise BadRequest("ends_at must be after starts_at and in the future", code="validation_error",
                         details=[{"field": "ends_at", "message": "must be after starts_at and now"}])
    before_start = bool(set(changes) - {"ends_at"})
    try:
        flash_sales.update_sale(sale_id, changes, now=now, before_start=before_start)
    except ConditionFailed:
        raise Conflict("Only the end of a started sale may change, and an ended sale not at all",
                       code="flash_sale_started") from None
    forget_sale(sale_id)
    return admin_view(sale_id)


def stop_sale(sale_id: str) -> AdminFlashSaleOut:
    """End the sale now: it stops selling at once and its unsold units go back to the SKU (the
    sweep finishes what a busy shard holds back). Stopping again changes nothing."""
    settle(_get(sale_id, consistent=True))
    return admin_view(sale_id)


def settle(sale: FlashSale) -> str:
    """End the sale: stop it selling at once (active -> ending), then give each shard's unsold
    units back to available stock, then mark it ended. Whoever comes first does it; an end
    interrupted (or a shard still moving under a consumer that read the sale before it ended)
    is finished by the next sweep. Tickets already assigned keep their units: they stay
    allocated until their orders are written."""
    if sale.state == SaleState.ENDED.value:
        return "ended_before"
    if sale.state == SaleState.ACTIVE.value:
        flash_transactions.begin_ending(sale.sale_id, clock.now())  # False: someone else began it
    forget_sale(sale.sale_id)
    for shard in range(sale.shards):
        if not _drain(sale, shard):
            return "busy"
    if flash_transactions.finish_ending(sale.sale_id, clock.now()):
        log.info("flash sale ended", sale_id=sale.sale_id)
        return "settled"
    return "ended_before"


def _drain(sale: FlashSale, shard: int) -> bool:
    for _ in range(SETTLE_ATTEMPTS):
        units = flash_sales.read_stock_shard(sale.sale_id, shard)
        if units == 0:
            return True
        try:
            flash_transactions.drain_shard(sale, shard, units)
            return True
        except flash_transactions.ShardsMoved:
            continue
        except flash_transactions.SaleEnded:  # finished by another caller meanwhile
            return True
    return False


def settle_due_sales(limit: int = 50) -> dict[str, int]:
    """The sweep: end every active sale whose end time has passed."""
    outcomes: dict[str, int] = {}
    for sale_id in flash_sales.due_sale_ids(clock.now(), limit):
        sale = flash_sales.get_sale(sale_id, consistent=True)
        outcome = settle(sale) if sale else "missing"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def admin_view(sale_id: str) -> AdminFlashSaleOut:
    flush_counts(sale_id)  # this instance's own entries, at least, are in the counts it shows
    sale = _get(sale_id, consistent=True)
    counts = flash_sales.read_counts(sale)
    return _admin_out(sale, counts)


def list_for_admin(state: str, limit: int, cursor: str | None) -> tuple[list[AdminFlashSaleOut], str | None]:
    secret, scope = get_settings().auth_token_secret, f"admin-flash-sales:{state}"
    page, last_key = flash_sales.list_sales(state, limit, cursors.decode_cursor(cursor, secret, scope))
    for sale in page:
        flush_counts(sale.sale_id)
    return [_admin_out(sale, flash_sales.read_counts(sale)) for sale in page], cursors.encode_cursor(
        last_key, secret, scope)


def list_for_buyers(limit: int, cursor: str | None) -> tuple[list[FlashSaleOut], str | None]:
    """Sales not yet ended (upcoming and running), soonest end first, with units left."""
    secret, scope, now = get_settings().auth_token_secret, "flash-sales", clock.now()
    page, last_key = flash_sales.list_sales(SaleState.ACTIVE.value, limit, cursors.decode_cursor(cursor, secret, scope),
                                            ending_after=now)
    remaining = flash_sales.remaining_of(page)
    return ([sale_out(sale, remaining[sale.sale_id], now) for sale in page],
            cursors.encode_cursor(last_key, secret, scope))


def sale_out(sale: FlashSale, remaining: int, now: datetime) -> FlashSaleOut:
    status = phase(sale.state, sale.starts_at, sale.ends_at, sale.sold_out or remaining == 0, now)
    return FlashSaleOut(
        sale_id=sale.sale_id, sku_id=sale.sku_id, product_id=sale.product_id, name=sale.name, specs=sale.specs,
        price_fen=sale.price_fen, original_price_fen=sale.original_price_fen, quantity=sale.quantity,
        remaining=remaining, per_user_limit=sale.per_user_limit, starts_at=clock.to_iso(sale.starts_at),
        ends_at=clock.to_iso(sale.ends_at), status=status.value)


def _admin_out(sale: FlashSale, counts: SaleCounts) -> AdminFlashSaleOut:
    public = sale_out(sale, counts.remaining, clock.now())
    return AdminFlashSaleOut(
        **public.model_dump(), shards=sale.shards, remaining_by_shard=list(counts.remaining_by_shard),
        queued=counts.queued, won=counts.won, lost=counts.lost, rejects=counts.rejects,
        created_at=clock.to_iso(sale.created_at),
        settled_at=clock.to_iso(sale.settled_at) if sale.settled_at else None, unsold_returned=sale.unsold_returned)


def _get(sale_id: str, consistent: bool = False) -> FlashSale:
    sale = flash_sales.get_sale(sale_id, consistent=consistent)
    if sale is None:
        raise NotFound("No such flash sale", code="flash_sale_not_found")
    return sale

