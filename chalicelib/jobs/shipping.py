"""Shipping-info uploads to WeChat (the queue consumer and the sweep behind it), and the after-sales
SLA sweep (the merchant's clocks after delivery)."""
from __future__ import annotations

from chalice import Blueprint, Rate

from chalicelib import queues
from chalicelib.lazy import lazy_module
from chalicelib.log import get_logger
from chalicelib.schemas.shipping import ShippingUploadJob

shipping_info = lazy_module("chalicelib.services.shipping_info")
after_sales = lazy_module("chalicelib.services.after_sales")

bp = Blueprint(__name__)
log = get_logger(__name__)


# batch_size=1: a message WeChat refuses for now is redelivered (and dead-lettered) alone.
@bp.on_sqs_message(queue=queues.SHIPPING_UPLOADS.name, batch_size=1)
def upload_shipping_infos(event) -> None:
    for record in event:
        shipping_info.upload_shipping_info(ShippingUploadJob.model_validate_json(record.body))


@bp.schedule(Rate(10, unit=Rate.MINUTES),
             description="Re-queue shipping-info uploads left idle (queueing failed or dead-lettered)")
def sweep_shipping_uploads(event) -> None:
    outcomes = shipping_info.sweep_stalled_uploads()
    if outcomes:
        log.info("shipping upload sweep", **outcomes)


@bp.schedule(Rate(5, unit=Rate.MINUTES), description="Escalate after-sales requests whose SLA clock ran out")
def sweep_after_sales_clocks(event) -> None:
    outcome = after_sales.sweep_sla_clocks()
    if outcome:
        log.info("after-sales SLA sweep", **outcome)
