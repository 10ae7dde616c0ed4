"""Paying for orders: prepay and wx.requestPayment, verified notifies, late and double payments.

A notify is applied at most once: the payment is recorded under WeChat's transaction_id in the
same transaction as the order's change, so a duplicate finds the key taken and changes nothing.
A notify that does not match our order (appid, mchid, unknown out_trade_no, amount) is refused
(WeChat retries) and recorded as an anomaly for the merchant. A payment that arrives after the
order was closed takes its stock again if it can, otherwise it is refunded in full; it is never
lost.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib import clock
from chalicelib.domain.order_status import InvalidOrderState
from chalicelib.errors import Conflict, NotFound
from chalicelib.log import get_logger
from chalicelib.lazy import lazy_module
from chalicelib.services import notifications, order_coupons, points, profit_sharing, refunds, shipping_info
from chalicelib.services.order_reads import get_user_order, overdue_unpaid_order_ids
from chalicelib.services.pay_gateway import gateway
from chalicelib.settings import get_settings
from chalicelib.services.pay_errors import pay_failures_as_app_errors
from chalicelib.storage import alerts, orders, payments, transactions, users
from chalicelib.storage.payments import APPLIED, REFUNDING, REVIVED, Payment
from chalicelib.wechat.pay_types import (PayApiError, PaymentNotification, PaySignatureError, PayUnavailable,
                                         Transaction)

log = get_logger(__name__)
gifts = lazy_module("chalicelib.services.gifts")  # the share reward: imported by the first paid order that needs it
group_buys = lazy_module("chalicelib.services.group_buys")  # group orders' payments (their place in the group)
PAYMENT_ANOMALY = "payment_anomaly"


class NotifyRejected(Exception):
    """Answer WeChat with a failure (it will retry); the reason is recorded for the merchant."""


def request_payment(user_id: str, order_id: str, client_ip: str) -> dict[str, str]:
    """The wx.requestPayment parameters for the user's unpaid order, reusing its prepay."""
    order = get_user_order(user_id, order_id)
    if order.status != "pending_payment":
        raise InvalidOrderState(f"An order that is {order.status} cannot be paid",
                                details=[{"status": order.status, "event": "pay"}])
    if clock.now() >= order.pay_deadline:
        raise Conflict("The payment deadline has passed", code="payment_deadline_passed")
    pay = gateway()
    prepay_id = (order.prepay or {}).get("prepay_id") if (order.prepay or {}).get("version") == pay.version else None
    if not prepay_id:
        user = users.get_user(user_id)
        if user is None:
            raise NotFound("No such user", code="user_not_found")
        sharing = pay.version == "v3" and profit_sharing.flag_prepay()  # 分账 is v3 only: a v2 store never flags
        with pay_failures_as_app_errors("prepay"):
            prepay_id = pay.prepay(order.out_trade_no, _description(order), order.payable_fen, user.openid,
                                   order.pay_deadline, client_ip, profit_sharing=sharing)
        orders.remember_prepay(order.order_id, prepay_id, pay.version, clock.now(), profit_sharing=sharing)
    return pay.request_payment_params(prepay_id)


def _description(order: orders.Order) -> str:
    """What the payer sees, e.g. "烟台红富士苹果 等3件" (WeChat allows 127 characters)."""
    units = sum(line.quantity for line in order.lines)
    first = order.lines[0].name
    return (first if units == 1 else f"{first} 等{units}件")[:120]


def handle_notification(notification: PaymentNotification, channel: str) -> str:
    """Apply a verified payment or refund notify; returns what happened. Raises NotifyRejected."""
    if notification.kind == "refund":
        return refunds.handle_refund_result(notification.refund)
    return apply_transaction(notification.transaction, channel)


def apply_transaction(transaction: Transaction, channel: str) -> str:
    """A transaction WeChat reports (notify or query): apply it if it is a success of ours."""
    if transaction.trade_state != "SUCCESS":
        return "not_paid"
    settings = get_settings()
    order = orders.get_order(transaction.out_trade_no)
    problem = _mismatch(transaction, order, settings.wechat_appid, settings.pay.mch_id)
    if problem:
        _record_anomaly(problem, transaction)
        raise NotifyRejected(problem)
    payment = Payment(transaction_id=transaction.transaction_id, order_id=order.order_id,
                      amount_fen=transaction.amount_total_fen, paid_at=transaction.success_time or clock.now(),
                      channel=channel, outcome=APPLIED)
    outcome = _apply(order, payment)
    if outcome in ("paid", "revived"):
        shipping_info.after_paid(order)  # virtual goods count as delivered: queue the upload; never raises
    return outcome


def _mismatch(transaction: Transaction, order: orders.Order | None, appid: str, mch_id: str) -> str | None:
    if transaction.appid != appid:
        return "appid does not match"
    if transaction.mchid != mch_id:
        return "mchid does not match"
    if order is None:
        return "unknown out_trade_no"
    if not transaction.transaction_id:
        return "no transaction_id"
    if transaction.amount_total_fen != order.payable_fen:
        return "amount does not match the order"
    return None


def _record_anomaly(problem: str, transaction: Transaction) -> None:
    log.warning("payment notify refused", problem=problem, out_trade_no=transaction.out_trade_no)
    alerts.record_alert(PAYMENT_ANOMALY, clock.now(), detail={
        "problem": problem, "out_trade_no": transaction.out_trade_no,
        "transaction_id": transaction.transaction_id or "", "amount_fen": transaction.amount_total_fen or 0})


def _apply(order: orders.Order, payment: Payment) -> str:
    """Pay the order; a late payment revives it or is refunded; a duplicate changes nothing."""
    now = clock.now()
    try:
        if order.status == "pending_payment" and order.offer and order.offer["kind"] == "group_buy":
            return _pay_group_order(order, payment, now)
        if order.status == "pending_payment":
            _pay_using_coupons(order, payment, now)
            log.info("order paid", order_id=order.order_id, amount_fen=payment.amount_fen)
            _reward_referrer(order)
            notifications.notify_order_event(order, "paid", now)  # never raises
            return "paid"
        if order.status == "cancelled" and (order.flash_sale or order.offer):
            # Its unit went back to the sale and on to the next buyer (an offer's place or price may
            # have too): never revived at the sale price.
            return _refund_unappliable(order, payment, "paid after the flash-sale order closed" if order.flash_sale
                                       else f"paid after the {order.offer['kind']} order closed", now)
        if order.status == "cancelled":
            return _revive_or_refund(order, payment, now)
    except transactions.DuplicatePayment:
        return "duplicate"
    except transactions.StatusChanged:
        return _apply(orders.get_order(order.order_id), payment)  # it moved meanwhile: decide again
    if order.transaction_id == payment.transaction_id:
        return "duplicate"
    try:
        return _refund_unappliable(order, payment, "paid twice", now)
    except transactions.DuplicatePayment:
        return "duplicate"  # WeChat's redelivery of the second payment's notify: recorded already


def _pay_using_coupons(order: orders.Order, payment: Payment, now: datetime) -> None:
    """Pay the order and mark its coupons used, together. Should the wallet not hold the coupons as
    locked by this order (records disagree), the payment is still applied (money received is never
    left unapplied for a coupon's sake) and the merchant is alerted to look. (Its points were taken
    when it was placed; its spend counts towards the member level when it completes.)"""
    try:
        transactions.pay_order(order, payment, now, extra_updates=order_coupons.use(order, now))
    except order_coupons.CouponStateChanged:
        order_coupons.report_mismatch(order, "at payment", now, transaction_id=payment.transaction_id)
        transactions.pay_order(order, payment, now)


def _pay_group_order(order: orders.Order, payment: Payment, now: datetime) -> str:
    """A group order's payment takes its place in its group in the payment's own transaction, or
    leads a new group when its group can take it no more (services/group_buys.py): never refused,
    never lost for the group's sake."""
    group_buys.pay_into_group(order, payment, now)
    log.info("order paid", order_id=order.order_id, amount_fen=payment.amount_fen)
    _reward_referrer(order)
    notifications.notify_order_event(order, "paid", now)
    return "paid"


def _revive_or_refund(order: orders.Order, payment: Payment, now: datetime) -> str:
    extras = [*order_coupons.take_again(order, now), *points.take_again(order, now)]
    try:
        transactions.revive_order(order, _with_outcome(payment, REVIVED), now, extra_updates=extras)
    except transactions.StockShortage:
        return _refund_unappliable(order, payment, "paid after the order closed; sold out", now)
    except order_coupons.CouponsNotTaken:
        return _refund_unappliable(order, payment, "paid after the order closed; its coupon was used meanwhile", now)
    except points.PointsNotTaken:
        return _refund_unappliable(order, payment, "paid after the order closed; its points were used meanwhile", now)
    log.info("late payment revived the order", order_id=order.order_id)
    _reward_referrer(order)
    notifications.notify_order_event(order, "paid", now)
    return "revived"


def _reward_referrer(order: orders.Order) -> None:
    """The share reward (services/gifts.py): best-effort, never a reason for a payment to fail."""
    try:
        gifts.reward_referrer(order)
    except Exception:  # noqa: BLE001 - the payment is applied; a lost reward is only logged
        log.exception("share reward failed; not retried", order_id=order.order_id, user_id=order.user_id)


def _refund_unappliable(order: orders.Order, payment: Payment, reason: str, now: datetime) -> str:
    """Record the payment with a full refund and ask WeChat for it (DuplicatePayment if seen)."""
    refund = refunds.new_refund(order, payment.transaction_id, payment.amount_fen, reason, lines=(),
                                out_refund_no=f"RF{payment.transaction_id}"[:64])
    transactions.record_payment_to_refund(_with_outcome(payment, REFUNDING), refund, now)
    log.warning("payment refunded automatically", order_id=order.order_id, reason=reason)
    refunds.submit_refund(refund, order)
    return "refunding"


def _with_outcome(payment: Payment, outcome: str) -> Payment:
    return Payment(**{**payment.__dict__, "outcome": outcome})


def payments_and_refunds(order: orders.Order) -> tuple[list[payments.Payment], list[payments.Refund]]:
    refunds_ = payments.refunds_of_order(order.order_id)
    return payments.payments_of_order(order.order_id, order.transaction_id, refunds_), refunds_


def settle_with_wechat(order: orders.Order) -> str:
    """Before we close an unpaid order that WeChat knows (it has a prepay): ask WeChat first.

    A payment WeChat reports is applied ("paid"); otherwise the WeChat order is closed so it
    can no longer be paid ("closed"). If WeChat cannot be asked, nothing is closed
    ("unavailable"): the next sweep tries again, and a payment in between is never lost.
    """
    if not order.prepay:
        return "no_prepay"
    pay = gateway()
    try:
        transaction = pay.query(order.out_trade_no)
        if transaction.trade_state == "SUCCESS":
            apply_transaction(transaction, pay.version)
            return "paid"
        if transaction.trade_state not in ("CLOSED", "REVOKED"):
            pay.close(order.out_trade_no)
    except PayApiError as error:
        if error.code not in ("ORDER_NOT_EXIST", "ORDERNOTEXIST"):
            log.warning("WeChat refused to close the order", order_id=order.order_id, code=error.code)
            return "unavailable"
    except (PayUnavailable, PaySignatureError, NotifyRejected, group_buys.GroupBusy):
        log.warning("could not settle the order with WeChat before closing it", order_id=order.order_id)
        return "unavailable"
    return "closed"


def reconcile_unpaid_orders(limit: int = 100, ahead: timedelta = timedelta(minutes=2)) -> dict[str, int]:
    """Orders near or past their deadline that WeChat has heard of but not told us about: a
    lost notify is found here and applied (a paid order is never closed for want of one)."""
    outcomes: dict[str, int] = {}
    for order_id in overdue_unpaid_order_ids(clock.now() + ahead, limit):
        order = orders.get_order(order_id)
        if order is None or order.status != "pending_payment" or not order.prepay:
            continue
        try:
            outcome = apply_transaction(gateway().query(order.out_trade_no), gateway().version)
        except (PayApiError, PayUnavailable, PaySignatureError, NotifyRejected, group_buys.GroupBusy):
            outcome = "unavailable"  # GroupBusy: its group kept moving; the next sweep applies it
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
