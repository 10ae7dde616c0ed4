"""Order timers: the per-order pay-deadline messages and the safety-net sweeps."""
from __future__ import annotations

from chalice import Blueprint, Rate

from chalicelib import queues
from chalicelib.lazy import lazy_module
from chalicelib.log import get_logger
from chalicelib.schemas.timers import OrderTimer

order_lifecycle = lazy_module("chalicelib.services.order_lifecycle")

bp = Blueprint(__name__)
log = get_logger(__name__)


# Closing is idempotent (conditional on pending_payment), so redelivering a whole batch is safe.
@bp.on_sqs_message(queue=queues.ORDER_TIMERS.name, batch_size=10)
def fire_order_timers(event) -> None:
    for record in event:
        order_lifecycle.handle_pay_deadline_timer(OrderTimer.model_validate_json(record.body))


@bp.schedule(Rate(1, unit=Rate.MINUTES), description="Close unpaid orders whose timer message was lost or late")
def sweep_unpaid_orders(event) -> None:
    outcomes = order_lifecycle.sweep_overdue_orders()
    if outcomes:
        log.info("unpaid order sweep", **outcomes)


@bp.schedule(Rate(1, unit=Rate.HOURS), description="Complete shipped orders after AUTO_CONFIRM_DAYS")
def sweep_auto_confirm(event) -> None:
    outcomes = order_lifecycle.sweep_auto_confirm()
    if outcomes:
        log.info("auto-confirm sweep", **outcomes)
