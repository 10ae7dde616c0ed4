"""The coupons an order applied move with the order, in the order's own transactions
(storage/transactions.py's `extra_updates`), so each move happens exactly once with the status
change that causes it:

- placing the order locks them (unused -> locked; condition: unused, valid now, in the buyer's
  wallet), or the order is refused 409 `coupon_unavailable` and reserves nothing;
- cancel and timeout unlock them (locked by this order -> unused);
- payment uses them (locked by this order -> used);
- a payment that revives a closed order takes them again (unused -> used), or the payment is
  refunded like one for sold-out stock;
- a full refund gives back those still valid (used by this order -> unused).

An order's coupons are its `coupon` adjustments (Order.coupon_ids); one wallet item per user
holds them all, so each move is ONE Update, however many coupons.
"""
from __future__ import annotations

from datetime import datetime

from chalicelib.errors import Conflict
from chalicelib.log import get_logger
from chalicelib.storage import alerts, coupons
from chalicelib.storage.orders import Order
from chalicelib.storage.transactions import ExtraUpdate


log = get_logger(__name__)
COUPON_MISMATCH = "coupon_mismatch"  # alert kind: an order's coupons are not where its status says


class CouponUnavailable(Conflict):
    code = "coupon_unavailable"
    message = "A coupon of this order is no longer available (used by another order, or expired)"


class CouponsNotTaken(Exception):
    """A revived order's coupons were used meanwhile: its payment is refunded instead."""


class CouponStateChanged(Exception):
    """The wallet does not hold this order's coupons as the order's status says it should."""


def lock(user_id: str, order_id: str, coupon_ids: tuple[str, ...], now: datetime) -> list[ExtraUpdate]:
    if not coupon_ids:
        return []
    failure = CouponUnavailable(details=[{"coupon_id": coupon_id} for coupon_id in coupon_ids])
    return [ExtraUpdate(coupons.lock_coupons(user_id, coupon_ids, order_id, now).as_request(), failure)]


def release(order: Order) -> list[ExtraUpdate]:
    return _moved(order.coupon_ids, lambda ids: coupons.release_coupons(order.user_id, ids, order.order_id))


def use(order: Order, now: datetime) -> list[ExtraUpdate]:
    return _moved(order.coupon_ids, lambda ids: coupons.use_coupons(order.user_id, ids, order.order_id, now))


def take_again(order: Order, now: datetime) -> list[ExtraUpdate]:
    if not order.coupon_ids:
        return []
    update = coupons.use_released_coupons(order.user_id, order.coupon_ids, order.order_id, now)
    return [ExtraUpdate(update.as_request(), CouponsNotTaken())]


def give_back(order: Order, now: datetime) -> list[ExtraUpdate]:
    """A fully refunded order returns its coupons that are still valid now (a coupon expiring
    between this read and the write fails the transaction, whose caller re-reads and retries)."""
    if not order.coupon_ids:
        return []
    wallet = coupons.get_wallet(order.user_id, consistent=True)
    valid = tuple(coupon_id for coupon_id in order.coupon_ids
                  if (coupon := wallet.get(coupon_id)) is not None and coupon.status == "used" and now < coupon.valid_to)
    return _moved(valid, lambda ids: coupons.return_coupons(order.user_id, ids, order.order_id, now))


def _moved(coupon_ids: tuple[str, ...], build) -> list[ExtraUpdate]:
    """One wallet Update moving these coupons (none when there are none); its condition failing
    means the wallet and the order disagree (CouponStateChanged)."""
    if not coupon_ids:
        return []
    return [ExtraUpdate(build(coupon_ids).as_request(), CouponStateChanged(", ".join(coupon_ids)))]


def report_mismatch(order: Order, moment: str, now: datetime, **detail: str) -> None:
    """The wallet does not hold the order's coupons as its status says (records disagree). The
    caller goes on without the coupon move (money received or returned, an order closed, is
    never held up for a coupon's sake); the merchant is alerted to look."""
    log.error("the order's coupons are not where its status says; going on without moving them",
              order_id=order.order_id, moment=moment)
    alerts.record_alert(COUPON_MISMATCH, now, detail={
        "problem": f"coupons not as expected {moment}", "order_id": order.order_id,
        "coupon_ids": ",".join(order.coupon_ids), **detail})
