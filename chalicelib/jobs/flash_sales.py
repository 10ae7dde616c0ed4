"""Flash sales in the background: the entries consumer and the end-of-sale sweep."""
from __future__ import annotations

from chalice import Blueprint, Rate

from chalicelib import queues
from chalicelib.lazy import lazy_module
from chalicelib.log import get_logger
from chalicelib.schemas.flash_sales import FlashEntryMessage

flash_orders = lazy_module("chalicelib.services.flash_orders")
flash_sales = lazy_module("chalicelib.services.flash_sales")

bp = Blueprint(__name__)
log = get_logger(__name__)


# In queue order within the batch. Every step is conditioned on the ticket's status, so a
# redelivered batch changes nothing twice; a message failing 5 receives goes to the DLQ (and the
# stale-ticket sweep sends it again). At most CONSUMERS at once: that caps the write rate on the
# sale's shards and SKU (docs/decisions.md). The event source's maximum concurrency, unlike a
# function's reserved concurrency, does not throttle receives into the DLQ during a surge.
CONSUMERS = 5


@bp.on_sqs_message(queue=queues.FLASH_ENTRIES.name, batch_size=10, maximum_concurrency=CONSUMERS)
def consume_flash_entries(event) -> None:
    messages = [FlashEntryMessage.model_validate_json(record.body) for record in event]
    log.info("flash entries", **flash_orders.process_entries(messages))


@bp.schedule(Rate(1, unit=Rate.MINUTES), description="End flash sales past their end: unsold units back to stock")
def settle_flash_sales(event) -> None:
    outcomes = flash_sales.settle_due_sales()
    if outcomes:
        log.info("flash sale sweep", **outcomes)


@bp.schedule(Rate(1, unit=Rate.MINUTES), description="Send again the messages of flash-sale tickets left undecided")
def resend_stale_flash_tickets(event) -> None:
    outcomes = flash_orders.resend_stale_tickets()
    if outcomes:
        log.info("stale flash tickets", **outcomes)
