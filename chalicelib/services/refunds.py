"""Refunds: ask WeChat (out_refund_no is the idempotency key, so retries are safe), then follow
its word: SUCCESS completes the refund (once: the refund, the order's refunded total and status,
and the restock of unshipped units move in one transaction); CLOSED fails it (no money moved);
ABNORMAL keeps it blocked and alerted until the merchant finishes it by hand and WeChat says
SUCCESS or CLOSED. A retry job asks again about unfinished refunds, each on its own backoff; one
that keeps failing becomes `stuck`, alerted, until the merchant retries it.
"""
from __future__ import annotations

import random
import time

from chalicelib import clock
from chalicelib.domain.refunds import (FIRST_ATTEMPT_DELAY, RefundExceedsPayment, next_refund_attempt,
                                      order_after_refund)
from chalicelib.errors import Conflict, NotFound
from chalicelib.log import get_logger
from chalicelib.services import members, notifications, order_coupons, points
from chalicelib.services.pay_gateway import gateway
from chalicelib.storage import after_sales, alerts, orders, payments, refund_transactions
from chalicelib.storage.payments import ABNORMAL, PROCESSING, STUCK, UNFINISHED, Refund
from chalicelib.storage.refund_transactions import OrderMoved, RefundFinished
from chalicelib.wechat.pay_types import PayApiError, PaySignatureError, PayUnavailable
from chalicelib.wechat.pay_types import Refund as WeChatRefund

log = get_logger(__name__)
REFUND_FAILED, REFUND_ABNORMAL, REFUND_STUCK = "refund_failed", "refund_abnormal", "refund_stuck"
MAX_FAILURES = 8  # asks in a row that fail (about 4 hours with the backoff) before a refund is stuck
ORDER_ATTEMPTS = 6  # completions racing on one order re-read it; bounded


class UnknownRefund(Exception):
    """A refund result for an out_refund_no we never made: refused and recorded."""


class RefundBusy(Exception):
    """The order kept changing under the completion: WeChat's retry (or the job) finishes it."""


def new_refund(order: orders.Order, transaction_id: str, amount_fen: int, reason: str, *,
               lines: tuple[tuple[str, int], ...], out_refund_no: str, request_id: str | None = None) -> Refund:
    """A refund about to be requested; `lines` are (sku_id, units) to restock if never shipped.
    It joins the retry queue at once, due a little later than the ask made right after it."""
    now = clock.now()
    restock = "pending" if lines and order.shipped_at is None else "no"
    return Refund(out_refund_no=out_refund_no, order_id=order.order_id, transaction_id=transaction_id,
                  amount_fen=amount_fen, status=PROCESSING, reason=reason[:80], refund_id=None,
                  request_id=request_id, lines=lines, restock=restock, created_at=now, completed_at=None,
                  next_attempt_at=now + FIRST_ATTEMPT_DELAY)


def submit_refund(refund: Refund, order: orders.Order) -> str:
    """Ask WeChat for the refund (again, if it was asked before: same out_refund_no). Failures
    leave it unfinished for the retry job; nothing is lost."""
    try:
        result = gateway().refund(order.out_trade_no, refund.out_refund_no, refund.amount_fen, order.payable_fen,
                                  refund.reason)
    except (PayApiError, PayUnavailable, PaySignatureError) as error:
        log.warning("refund request failed; will retry", out_refund_no=refund.out_refund_no,
                    error=type(error).__name__, code=getattr(error, "code", None))
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
    if result.status == "CLOSED":
        return _close(refund, result.refund_id)
    if result.status == "ABNORMAL":
        return _mark_abnormal(refund, result.refund_id)
    return "processing"


def complete_refund(refund: Refund, refund_id: str | None) -> str:
    """Complete it once, with its order's refunded total and status and the restock of its
    unshipped units; repeats answer "duplicate". Raises RefundBusy if the order kept moving."""
    current, outcome, coupons_as_expected = refund, None, True
    for attempt in range(ORDER_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, 0.02 * attempt))  # spread completions racing on one order
            current = payments.get_refund(refund.out_refund_no)
        if current.status not in UNFINISHED:
            outcome = "duplicate"
            break
        order = orders.get_order(current.order_id)
        change = _order_change(current, order)
        # Re-decided here, from the order as it is (its status is the transaction's condition):
        # goods that shipped are not put back on sale, whatever was expected at approval.
        restock = current.restock == "pending" and change is not None and order.shipped_at is None
        # A refund that makes the order whole gives back its coupons still valid, in the same write.
        now = clock.now()
        coupons_back = (order_coupons.give_back(order, now)
                        if coupons_as_expected and change is not None and change.status == "refunded"
                        and order.status != "refunded" else [])
        extras = [*coupons_back, *_spend_and_points_back(order, change, current.out_refund_no, now)]
        try:
            refund_transactions.complete_refund(current, refund_id, now, change, restock, extras)
        except RefundFinished:
            outcome = "duplicate"
            break
        except OrderMoved:
            continue
        except order_coupons.CouponStateChanged:
            # WeChat has paid the money back: never left unrecorded for a coupon's sake.
            order_coupons.report_mismatch(order, "when the refund completed", now, out_refund_no=current.out_refund_no)
            coupons_as_expected = False
            continue
        log.info("refund completed", order_id=current.order_id, amount_fen=current.amount_fen,
                 order_status=change.status if change else None)
        outcome = "refunded"
        break
    if outcome is None:
        raise RefundBusy(refund.out_refund_no)
    if (outcome == "refunded" and order is not None and order.completed_at is not None  # only completion earns
            and change is not None and change.refunded_fen > change.expected_refunded_fen):
        _take_back_earned_points(order, current.out_refund_no, change.expected_refunded_fen, change.refunded_fen)
    if outcome == "refunded" and order is not None:  # not on a duplicate: one message per refund
        notifications.notify_order_event(order, "refunded", clock.now(), ref=current.out_refund_no,
                                         amount_fen=current.amount_fen)
    # Also on a duplicate: conditional and idempotent, it heals a crash after the transaction
    # (the notify is retried until we answer success).
    _settle_after_sale(refund)
    return outcome


def _take_back_earned_points(order: orders.Order, out_refund_no: str, before_fen: int, after_fen: int) -> None:
    """Money refunded after the order completed takes back the points it earned for that money
    (services/points.py, once per refund). After the refund's own transaction: money is never held
    up for points; a crash between loses the take-back, in the buyer's favour (logged)."""
    try:
        points.take_back_earned(order, out_refund_no, before_fen, after_fen)
    except Exception:  # noqa: BLE001 - the refund is done; a missed take-back is only logged
        log.exception("earned points not taken back", order_id=order.order_id, out_refund_no=out_refund_no)


def _spend_and_points_back(order: orders.Order | None, change, out_refund_no: str, now) -> list:
    """Money back on the order's own payment comes off the buyer's member spend, and gives back
    the points share of it (services/points.py): unconditional writes in the completion's
    transaction, so exactly once with it and never a reason for it to fail."""
    if order is None or change is None or change.refunded_fen <= change.expected_refunded_fen:
        return []
    return [*members.spend_refunded(order, change.refunded_fen - change.expected_refunded_fen),
            *points.refund_back(order, out_refund_no, change.refunded_fen, now)]


def _order_change(refund: Refund, order: orders.Order | None):
    if order is None:
        return None
    facts = dict(status=order.status, transaction_id=order.transaction_id, payable_fen=order.payable_fen,
                 refunded_fen=order.refunded_fen, in_flight=order.refunds_in_flight,
                 refund_transaction_id=refund.transaction_id, out_refund_no=refund.out_refund_no,
                 amount_fen=refund.amount_fen)
    try:
        return order_after_refund(**facts)
    except RefundExceedsPayment:
        # WeChat never refunds more than a payment, and claims never ask for more: seeing this
        # means records disagree. The refund is still done (WeChat says so); the total stays.
        log.error("refunds would exceed the payment", order_id=order.order_id, out_refund_no=refund.out_refund_no)
        alerts.record_alert(REFUND_FAILED, clock.now(), detail={
            "problem": "refunds exceed the payment", "out_refund_no": refund.out_refund_no,
            "order_id": order.order_id, "amount_fen": refund.amount_fen})
        return order_after_refund(**facts, count=False)


def _close(refund: Refund, refund_id: str | None) -> str:
    """WeChat closed it: no money moved. The request goes back to `approved` with a note."""
    try:
        refund_transactions.close_refund(refund, refund_id, clock.now(), release_in_flight=refund.restock == "pending")
    except RefundFinished:
        return "duplicate"
    alerts.record_alert(REFUND_FAILED, clock.now(), detail={
        "problem": "WeChat says CLOSED", "out_refund_no": refund.out_refund_no,
        "order_id": refund.order_id, "amount_fen": refund.amount_fen})
    _settle_after_sale(refund, failure="WeChat Pay says CLOSED (no money moved); approve again or reject")
    return "failed"


def _mark_abnormal(refund: Refund, refund_id: str | None) -> str:
    """The money is stuck at WeChat (e.g. the buyer's card was closed): the merchant finishes it
    on the merchant platform. It stays blocking (no second refund can be approved) and alerted,
    and is looked at again now and then: a SUCCESS or CLOSED may still come."""
    if refund_transactions.mark_abnormal(refund, refund_id, clock.now() + next_refund_attempt(0, abnormal=True)):
        alerts.record_alert(REFUND_ABNORMAL, clock.now(), detail={
            "problem": "WeChat says ABNORMAL: finish the refund on the WeChat Pay merchant platform",
            "out_refund_no": refund.out_refund_no, "order_id": refund.order_id, "amount_fen": refund.amount_fen})
        log.warning("refund abnormal", order_id=refund.order_id, out_refund_no=refund.out_refund_no)
    return "abnormal"


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


# ------------------------------------------------------------------------------ the retry job

def retry_due_refunds(limit: int = 50) -> dict[str, int]:
    """Ask WeChat again about each unfinished refund whose next attempt is due, each on its own:
    one that fails, or raises, is put back by its backoff and never stops the others."""
    now = clock.now()
    outcomes: dict[str, int] = {}
    for out_refund_no in payments.due_refund_numbers(now, limit):
        try:
            outcome = _retry_one(out_refund_no, now)
        except Exception:  # noqa: BLE001 - isolate it; it is put back and counted as a failure
            log.exception("refund retry failed unexpectedly", out_refund_no=out_refund_no)
            outcome = "error"
            _put_back_after_error(out_refund_no, now)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def _retry_one(out_refund_no: str, now) -> str:
    refund = payments.get_refund(out_refund_no)  # the index is eventually consistent: re-read
    if refund is None or refund.status not in (PROCESSING, ABNORMAL) or not refund.next_attempt_at \
            or refund.next_attempt_at > now:
        return "not_due"
    order = orders.get_order(refund.order_id)
    outcome = submit_refund(refund, order) if order else "missing_order"
    if outcome in ("refunded", "duplicate", "failed"):
        return outcome  # finished: it left the queue in the same write
    if outcome == "abnormal" and refund.status == PROCESSING:
        return outcome  # it just became abnormal, on the schedule that change set
    return _schedule_next(refund, failed=outcome in ("retry", "missing_order"), now=now) or outcome


def _schedule_next(refund: Refund, failed: bool, now) -> str | None:
    stuck = failed and refund.status == PROCESSING and refund.failures + 1 >= MAX_FAILURES
    next_at = now + next_refund_attempt(refund.attempts + 1, abnormal=refund.status == ABNORMAL)
    if not refund_transactions.record_attempt(refund, failed, next_at, stuck) or not stuck:
        return None
    log.error("refund stuck: asking WeChat keeps failing", order_id=refund.order_id,
              out_refund_no=refund.out_refund_no)
    alerts.record_alert(REFUND_STUCK, now, detail={
        "problem": f"asking WeChat failed {MAX_FAILURES} times in a row; retry it once the cause is fixed",
        "out_refund_no": refund.out_refund_no, "order_id": refund.order_id, "amount_fen": refund.amount_fen})
    return "stuck"


def _put_back_after_error(out_refund_no: str, now) -> None:
    try:
        refund = payments.get_refund(out_refund_no)
        if refund is not None and refund.status in (PROCESSING, ABNORMAL):
            _schedule_next(refund, failed=True, now=now)
    except Exception:  # noqa: BLE001 - the next run sees it again; logged, never raised
        log.exception("could not put a refund back on its backoff", out_refund_no=out_refund_no)


def retry_stuck_refund(out_refund_no: str) -> Refund:
    """The merchant fixed the cause (e.g. topped up the balance): ask WeChat again now. A refund
    already being retried answers unchanged; a finished one is 409."""
    refund = payments.get_refund(out_refund_no)
    if refund is None:
        raise NotFound("No such refund", code="refund_not_found")
    if refund.status == STUCK:
        if refund_transactions.retry_stuck(out_refund_no, clock.now()):
            log.info("stuck refund queued again", out_refund_no=out_refund_no)
        return payments.get_refund(out_refund_no)
    if refund.status in (PROCESSING, ABNORMAL):
        return refund
    raise Conflict(f"A refund that is {refund.status} cannot be retried", code="invalid_refund_state",
                   details=[{"out_refund_no": out_refund_no, "status": refund.status}])
