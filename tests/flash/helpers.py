"""Flash-sale test helpers: a sale on a demo-store SKU, entering it, and draining the queue."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from chalicelib import clock, queues
from chalicelib.schemas.flash_sales import CreateFlashSaleBody, EntryBody, FlashEntryMessage
from chalicelib.services import flash_orders, flash_sales


def sale_body(sku_id: str = "sku-giftcard-100", *, quantity: int = 10, per_user_limit: int = 1, shards: int = 1,
              price_fen: int = 5000, starts_at: datetime | None = None, minutes: float = 30) -> dict[str, Any]:
    starts = starts_at or clock.now() - timedelta(minutes=1)
    return {"sku_id": sku_id, "price_fen": price_fen, "quantity": quantity, "per_user_limit": per_user_limit,
            "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(minutes=minutes)).isoformat(),
            "shards": shards}


def create_sale(**terms: Any) -> str:
    return flash_sales.create_sale(CreateFlashSaleBody.model_validate(sale_body(**terms)))[0].sale_id


def entry(sku_id: str = "sku-giftcard-100", quantity: int = 1, request_id: str | None = None,
          **delivery: Any) -> EntryBody:
    return EntryBody.model_validate({"sku_id": sku_id, "quantity": quantity,
                                     "request_id": request_id or uuid.uuid4().hex, **delivery})


def drain_entries(max_batches: int = 1000) -> dict[str, int]:
    """Receive the flash-entries queue in batches of 10 and run the consumer, as Lambda would;
    returns the summed outcomes."""
    import boto3

    sqs, url = boto3.client("sqs"), queues.queue_url(queues.FLASH_ENTRIES.name)
    totals: dict[str, int] = {}
    for _ in range(max_batches):
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not received:
            break
        outcomes = flash_orders.process_entries([FlashEntryMessage.model_validate_json(m["Body"]) for m in received])
        for name, count in outcomes.items():
            totals[name] = totals.get(name, 0) + count
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(received)])
    return totals
