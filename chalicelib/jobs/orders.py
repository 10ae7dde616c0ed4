"""Order timers: the per-order pay-deadline messages, the low-stock checks after an order, and
the safety-net sweeps."""
from __future__ import annotations

from chalice import Blueprint, Rate

from chalicelib import queues
from chalicelib.lazy import lazy_module
from chalicelib.log import get_logger
from chalicelib.schemas.timers import GroupTimer, LowStockCheck, parse_order_message

order_lifecycle = lazy_module("chalicelib.services.order_lifecycle")
stock = lazy_module("chalicelib.services.stock")
group_settlement = lazy_module("chalicelib.services.group_settlement")

bp = Blueprint(__name__)
log = get_logger(__name__)


# Closing is idempotent (conditional on pending_payment) and a low-stock alert is raised once
# per crossing (a conditional flag on the SKU), so redelivering a whole batch is safe.
@bp.on_sqs_message(queue=queues.ORDER_TIMERS.name, batch_size=10)
def fire_order_timers(event) -> None:
    for record in event:
        message = parse_order_message(record.body)
        if isinstance(message, LowStockCheck):
            stock.after_stock_moved(message.sku_ids, decreased=True)
        elif isinstance(message, GroupTimer):  # a group-buy's deadline: fail and refund it once (conditional)
            group_settlement.handle_timer(message)
        else:
            order_lifecycle.handle_pay_deadline_timer(message)


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
