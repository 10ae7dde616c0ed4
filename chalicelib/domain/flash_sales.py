"""Flash-sale (秒杀) rules, without I/O: the sale window, stock shards, tickets and reject reasons.

A sale's unsold units live in N shard counters (storage/flash_sales.py); the sum over shards
is the truth. A ticket takes its units from the shard its id hashes to and falls over to the
next ones when that shard is empty, so concurrent consumers spread their writes over N items.
"""
from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from enum import Enum

MAX_SHARDS = 32
MAX_QUANTITY = 100_000
MAX_PER_USER_LIMIT = 99
# Counters of tickets entered and of rejects: admission writes them about once a second per warm
# instance (hundreds of instances in a surge), and the consumer one per lost ticket, so they are
# spread over this many items whatever the stock's shard count (docs/decisions.md).
STATS_SHARDS = 16
# Tickets still undecided this long after they were accepted have their message sent again by
# a sweep (their message was lost, or dead-lettered); a healthy queue decides one in seconds.
STALE_TICKET_AFTER_SECONDS = 180


class SaleState(str, Enum):
    """Stored: `active` while it may sell; `ending` while its unsold units go back to the SKU
    (shard by shard; the sweep finishes an interrupted end); `ended` once they all have."""
    ACTIVE = "active"
    ENDING = "ending"
    ENDED = "ended"


class SalePhase(str, Enum):
    """What a buyer sees."""
    UPCOMING = "upcoming"
    ACTIVE = "active"
    SOLD_OUT = "sold_out"
    ENDED = "ended"


class TicketStatus(str, Enum):
    QUEUED = "queued"        # accepted, waiting in the queue
    ASSIGNED = "assigned"    # units taken from a shard; its order is being written (shown as queued)
    WON = "won"              # the pending_payment order exists
    LOST = "lost"            # sold out (or the sale ended) before its turn


PUBLIC_TICKET_STATUS = {TicketStatus.QUEUED: "queued", TicketStatus.ASSIGNED: "queued",
                        TicketStatus.WON: "won", TicketStatus.LOST: "lost"}


class RejectReason(str, Enum):
    """Why an entry was refused; counted per sale for the merchant."""
    NOT_STARTED = "not_started"
    ENDED = "ended"
    SOLD_OUT = "sold_out"
    LIMIT_EXCEEDED = "limit_exceeded"
    RATE_LIMITED = "rate_limited"
    SKU_NOT_ON_SALE = "sku_not_on_sale"
    DUPLICATE_REQUEST = "duplicate_request"


def phase(state: str, starts_at: datetime, ends_at: datetime, sold_out: bool, now: datetime) -> SalePhase:
    if state != SaleState.ACTIVE.value or now >= ends_at:
        return SalePhase.ENDED
    if now < starts_at:
        return SalePhase.UPCOMING
    return SalePhase.SOLD_OUT if sold_out else SalePhase.ACTIVE


def split_into_shards(quantity: int, shards: int) -> list[int]:
    """Units per shard, as even as possible (the first shards take the remainder)."""
    base, extra = divmod(quantity, shards)
    return [base + (1 if index < extra else 0) for index in range(shards)]


def shard_order(ticket_id: str, shards: int) -> list[int]:
    """The shards a ticket tries, in order: its own (by hash), then the next ones round the ring."""
    first = int.from_bytes(hashlib.sha256(ticket_id.encode()).digest()[:4], "big") % shards
    return [(first + step) % shards for step in range(shards)]


def stats_shard(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % STATS_SHARDS


def ticket_id_for(sale_id: str, user_id: str, request_id: str) -> str:
    """Derived from the request, so a repeated request_id finds the same ticket (no lookup)."""
    digest = hashlib.sha256(f"{sale_id}:{user_id}:{request_id}".encode()).digest()
    return "t" + base64.b32encode(digest).decode().rstrip("=").lower()[:25]


def order_id_for_ticket(ticket_id: str) -> str:
    """The won order's id: one per ticket, so a redelivered entry can never make a second order.
    24 chars of [0-9a-z], valid as WeChat Pay's out_trade_no."""
    digest = hashlib.sha256(f"flash-order:{ticket_id}".encode()).digest()
    return "f" + base64.b32encode(digest).decode().rstrip("=").lower()[:23]
