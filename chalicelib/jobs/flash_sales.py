"""Flash sales in the background: the entries consumer and the end-of-sale sweep."""
from __future__ import annotations

from chalice import Blueprint, Rate

from chalicelib import queues
from chalicelib.log import get_logger
from chalicelib.schemas.flash_sales import FlashEntryMessage
from chalicelib.services import flash_orders, flash_sales

bp = Blueprint(__name__)
log = get_logger(__name__)


# In queue order within the batch. Every step is conditioned on the ticket's status, so a
# redelivered batch changes nothing twice; a message failing 5 receives goes to the DLQ.
@bp.on_sqs_message(queue=queues.FLASH_ENTRIES.name, batch_size=10)
def consume_flash_entries(event) -> None:
    messages = [FlashEntryMessage.model_validate_json(record.body) for record in event]
    log.info("flash entries", **flash_orders.process_entries(messages))


@bp.schedule(Rate(1, unit=Rate.MINUTES), description="End flash sales past their end: unsold units back to stock")
def settle_flash_sales(event) -> None:
    outcomes = flash_sales.settle_due_sales()
    if outcomes:
        log.info("flash sale sweep", **outcomes)
