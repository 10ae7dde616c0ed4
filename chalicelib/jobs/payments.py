"""Payment safety nets: find lost notifies, and finish refunds WeChat has not confirmed."""
from __future__ import annotations

from chalice import Blueprint, Rate

from chalicelib.lazy import lazy_module
from chalicelib.log import get_logger

payments = lazy_module("chalicelib.services.payments")
refunds = lazy_module("chalicelib.services.refunds")

bp = Blueprint(__name__)
log = get_logger(__name__)


@bp.schedule(Rate(5, unit=Rate.MINUTES), description="Ask WeChat about unpaid orders near their deadline")
def reconcile_payments(event) -> None:
    outcomes = payments.reconcile_unpaid_orders()
    if outcomes:
        log.info("payment reconciliation", **outcomes)


@bp.schedule(Rate(5, unit=Rate.MINUTES), description="Ask WeChat again about unfinished refunds that are due")
def retry_refunds(event) -> None:
    outcomes = refunds.retry_due_refunds()
    if outcomes:
        log.info("refund retry", **outcomes)
