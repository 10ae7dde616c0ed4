"""Refunds: ask WeChat (out_refund_no is the idempotency key, so retries are safe), then
complete on its result: mark the refund, restock unshipped units once, and mark the order
refunded when every unit (and the delivery fee) has come back.
"""
from __future__ import annotations

from chalicelib import clock
from chalicelib.log import get_logger
from chalicelib.services.pay_gateway import gateway
from chalicelib.storage import after_sales, alerts, orders, payments, refund_transactions
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.payments import Refund
from chalicelib.wechat.pay_types import PayApiError, PaySignatureError, PayUnavailable
from chalicelib.wechat.pay_types import Refund as WeChatRefund

log = get_logger(__name__)
REFUND_FAILED = "refund_failed"
PROCESSING, SUCCESS, FAILED = "processing", "success", "failed"


class UnknownRefund(Exception):
    """A refund result for an out_refund_no we never made: refused and recorded."""


def new_refund(order: orders.Order, transaction_id: str, amount_fen: int, reason: str, *,
               lines: tuple[tuple[str, int], ...], out_refund_no: str, request_id: str | None = None) -> Refund:
    """A refund about to be requested; `lines` are (sku_id, units) to restock if never shipped."""
    restock = "pending" if lines and order.shipped_at is None else "no"
    return Refund(out_refund_no=out_refund_no, order_id=order.order_id, transaction_id=transaction_id,
                  amount_fen=amount_fen, status=PROCESSING, reason=reason[:80], refund_id=None,
                  request_id=request_id, lines=lines, restock=restock, created_at=clock.now(), completed_at=None)


def submit_refund(refund: Refund, order: orders.Order) -> str:
    """Ask WeChat for the refund (again, if it was asked before: same out_refund_no). Failures
    leave it `processing` for the retry job; nothing is lost."""
    try:
        result = gateway().refund(order.out_trade_no, refund.out_refund_no, refund.amount_fen, order.payable_fen,
                                  refund.reason)
    except (PayApiError, PayUnavailable, PaySignatureError) as error:
        log.warning("refund request failed; will retry", out_refund_no=refund.out_refund_no,
                    error=type(error).__name__)
        return "retry"
    return handle_refund_result(result)


def handle_refund_result(result: WeChatRefund) -> str:
    """WeChat's word on a refund (its answer, a notify, or a query)."""
    refund = payments.get_refund(result.out_refund_no)
    if refund is None:
        alerts.record_alert(REFUND_FAILED, clock.now(), detail={"problem": "unknown out_refund_no",
                                                                "out_refund_no": result.out_refund_no})
        raise UnknownRefund(result.out_refund_no)
    if result.status == "SUCCESS":
        return complete_refund(refund, result.refund_id)
    if result.status in ("ABNORMAL", "CLOSED"):
        if payments.mark_refund(refund.out_refund_no, PROCESSING, FAILED, refund_id=result.refund_id):
            alerts.record_alert(REFUND_FAILED, clock.now(), detail={
                "problem": f"WeChat says {result.status}", "out_refund_no": refund.out_refund_no,
                "order_id": refund.order_id, "amount_fen": refund.amount_fen})
            _settle_after_sale(refund, failure=f"WeChat Pay says {result.status}; approve again or reject")
        return "failed"
    return "processing"


def complete_refund(refund: Refund, refund_id: str | None) -> str:
    """Mark it done once; restock its unshipped units once; the order is refunded when whole."""
    outcome = "refunded"
    if refund.status == SUCCESS:
        outcome = "duplicate"
    else:
        try:
            refund_transactions.complete_refund_restocking(refund, refund_id, clock.now())
            log.info("refund completed", order_id=refund.order_id, amount_fen=refund.amount_fen)
        except ConditionFailed:
            outcome = "duplicate"
    # Also on a duplicate: both steps are conditional and idempotent, and repeating them heals a
    # crash that came after the refund's own write (the notify is retried until we answer success).
    _settle_after_sale(refund)
    _mark_order_refunded_if_whole(refund.order_id)
    return outcome


def _settle_after_sale(refund: Refund, failure: str | None = None) -> None:
    """The after-sales request the refund pays for follows it: refunded, or back to approved with
    a note. Conditioned on the request still refunding with this very refund (storage), so
    repeats and a stale attempt change nothing."""
    if not refund.request_id:
        return
    if failure is None:
        after_sales.mark_refunded(refund.request_id, refund.out_refund_no, clock.now())
    else:
        after_sales.mark_refund_failed(refund.request_id, refund.out_refund_no, failure, clock.now())


def _mark_order_refunded_if_whole(order_id: str) -> None:
    order = orders.get_order(order_id)
    if order is None or order.status not in ("paid", "shipped", "completed") or not order.transaction_id:
        return  # e.g. a late payment refunded in full leaves its closed order cancelled
    refunded = sum(r.amount_fen for r in payments.refunds_of_order(order_id)
                   if r.status == SUCCESS and r.transaction_id == order.transaction_id)
    if refunded >= order.payable_fen:
        try:
            orders.change_status(order_id, order.status, "refunded")
        except ConditionFailed:
            pass  # moved meanwhile; the next refund completion looks again


def retry_processing_refunds(limit: int = 50) -> dict[str, int]:
    """The safety net: ask WeChat again about refunds still processing (idempotent by out_refund_no)."""
    outcomes: dict[str, int] = {}
    for refund in payments.processing_refunds(limit):
        order = orders.get_order(refund.order_id)
        outcome = submit_refund(refund, order) if order else "missing_order"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
