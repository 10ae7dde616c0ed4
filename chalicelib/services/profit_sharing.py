"""Profit sharing (分账, Pay v3 only) of orders paid with settle_info.profit_sharing.

- At prepay (services/payments.py) a v3 store with PROFIT_SHARING=on flags the order's prepay;
  WeChat then keeps its funds frozen until they are split or unfrozen. A v2 store never flags.
- When a flagged order completes, the commission reconcile (services/commissions.py) schedules it
  here, due after the after-sales window. `run_due` (every 15 minutes) then, per order:
  1. plans the receivers once, before WeChat is asked (so every retry sends the same
     out_order_no `ps<order>` with the same content): the distributors' frozen commissions when
     COMMISSION_SETTLEMENT=profit_sharing (PERSONAL_OPENID), and the store's share
     (PROFIT_SHARING_STORE_MCHID, PROFIT_SHARING_STORE_PERMILLE of what was paid less refunds),
     within WeChat's 30% of the payment;
  2. adds the receivers and asks for the split (`POST /v3/profitsharing/orders`); on WeChat's
     word the commissions paid so are settled as `shared` (frozen -> withdrawn, once each);
  3. unfreezes the rest (`POST /v3/profitsharing/orders/unfreeze`, out_order_no `pu<order>`).
  A crash anywhere leaves the item where it was: the next run repeats the step with the same
  numbers, and WeChat answers the same order.
- A refund of a shared order returns the store's share through `POST /v3/profitsharing/return-orders`
  (out_return_no = the refund's out_refund_no; WeChat returns only from merchant receivers: a
  distributor's share is clawed back from their commission account instead). This runs from the
  orders stream after the refund: the refund path is not touched (a refund before the split, the
  usual case inside the after-sales window, needs no return at all). The refunds are those the
  order's `refunded_fen` accounts for (an index that lags raises RefundsNotListedYet), and a return
  WeChat did not take raises ShareReturnPending: the stream batch comes again, never finished silently.
- Orders are split or unfrozen on their own prepay flag, even after PROFIT_SHARING is turned off.
- A plan made stale by a clawback while share() kept failing is made again (when WeChat has no
  split yet); what WeChat paid beyond a commission's frozen remainder is booked as a debt.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib import clock, distribution_settings
from chalicelib.domain.commissions import MAX_PERMILLE
from chalicelib.log import get_logger
from chalicelib.storage import commissions as commission_store
from chalicelib.storage import orders, users
from chalicelib.storage import profit_sharing as store
from chalicelib.storage.base import ConditionFailed
from chalicelib.wechat.pay_types import PayApiError, PaySignatureError, PayUnavailable

log = get_logger(__name__)
PAY_FAILURES = (PayApiError, PayUnavailable, PaySignatureError)


def flag_prepay() -> bool:
    """Whether a new prepay asks WeChat to hold the funds for profit sharing."""
    try:
        return distribution_settings.load().profit_sharing
    except distribution_settings.DistributionSettingsError:
        return False


def schedule(order: orders.Order, settings, now: datetime) -> None:
    if order.transaction_id and order.completed_at:
        store.create(order.order_id, order.transaction_id,
                     order.completed_at + timedelta(days=settings.freeze_days), now)
    if order.refunded_fen:
        return_store_share(order)


def _funds():
    from chalicelib.services.withdrawals import _funds as funds

    return funds()


def plan(order: orders.Order, settings) -> list[dict]:
    left = order.payable_fen - order.refunded_fen
    cap = left * MAX_PERMILLE // 1000
    receivers: list[dict] = []
    if settings.settlement == "profit_sharing":
        for c in commission_store.commissions_of_order(order.order_id):
            user = users.get_user(c.beneficiary_id)
            if c.status == "frozen" and c.remaining_fen > 0 and user is not None:
                amount = min(c.remaining_fen, cap - sum(r["amount"] for r in receivers))
                if amount > 0:
                    receivers.append({"type": "PERSONAL_OPENID", "account": user.openid, "amount": amount,
                                      "description": "分销佣金", "level": c.level})
    if settings.store_mchid and settings.store_permille:
        amount = min(left * settings.store_permille // 1000, cap - sum(r["amount"] for r in receivers))
        if amount > 0:
            receivers.append({"type": "MERCHANT_ID", "account": settings.store_mchid, "amount": amount,
                              "description": "门店分账", "level": None})
    return receivers


def run_due(limit: int = 50, now: datetime | None = None) -> dict[str, int]:
    now = now or clock.now()
    done = 0
    for order_id in store.due_order_ids(now, limit):
        done += share_order(order_id, now) == "finished"
    return {"finished": done}


def share_order(order_id: str, now: datetime | None = None) -> str:
    from chalicelib.services import commissions

    now, settings = now or clock.now(), distribution_settings.load()
    sharing, order = store.get(order_id), orders.get_order(order_id)
    if sharing is None or order is None or sharing.status == "finished":
        return "nothing"
    if sharing.due_at and sharing.due_at > now:
        return "not_due"
    try:
        commissions.reconcile(order_id, settings, now)  # refunds clawed back before anything is split
        order = orders.get_order(order_id) or order
        if sharing.status == "scheduled":
            receivers = plan(order, settings) if order.status == "completed" else []
            store.move(order_id, "scheduled", "planned", receivers=receivers)
            sharing = store.get(order_id)
        if sharing.status == "planned":
            sharing = _replan_if_stale(order, sharing, settings)
            _split(order, sharing, settings, now)
            sharing = store.get(order_id)
        if sharing.status == "shared":
            if order.refunded_fen:
                return_store_share(order)  # refunds that came while the split was pending
            _funds().unfreeze(sharing.transaction_id, f"pu{order_id}")
            store.move(order_id, "shared", "finished", done=True)
            log.info("profit sharing finished", order_id=order_id)
            return "finished"
    except PAY_FAILURES as error:
        log.warning("profit sharing step failed; the next run repeats it", order_id=order_id,
                    error=type(error).__name__, code=getattr(error, "code", None))
        return "retry"
    except ConditionFailed:
        return "moved"  # a concurrent run took the step
    except (commissions.RefundsNotListedYet, commissions.ShareReturnPending) as waiting:
        log.warning("profit sharing waits (refunds index, or a return of the store's share)", order_id=order_id,
                    detail=str(waiting))
        return "retry"
    return sharing.status


def _receivers_key(receivers) -> list[tuple]:
    return [(r["type"], r["account"], r["amount"], r["level"]) for r in receivers]


def _replan_if_stale(order: orders.Order, sharing: store.Sharing, settings) -> store.Sharing:
    """The plan again when what it would be now differs (a refund clawed back a commission, or
    lowered the 30% cap, while share() kept failing): re-planned only when WeChat has no split
    `ps<order>` (so the same out_order_no carries the new content); if it has one, that split is
    what happened and is settled as it was sent."""
    fresh = plan(order, settings) if order.status == "completed" else []
    if _receivers_key(fresh) == _receivers_key(sharing.receivers):
        return sharing
    try:
        _funds().query_share(sharing.transaction_id, f"ps{order.order_id}")
        return sharing  # WeChat split by the old plan: settle that (shortfalls booked as debts)
    except PayApiError as error:
        if error.code != "RESOURCE_NOT_EXISTS":
            raise
    store.move(order.order_id, "planned", "planned", receivers=fresh)
    log.info("profit sharing re-planned", order_id=order.order_id,
             before=sum(r["amount"] for r in sharing.receivers), after=sum(r["amount"] for r in fresh))
    return store.get(order.order_id) or sharing


def _split(order: orders.Order, sharing: store.Sharing, settings, now: datetime) -> None:
    receivers = [{k: r[k] for k in ("type", "account", "amount", "description")} for r in sharing.receivers]
    if receivers:
        funds = _funds()
        for r in receivers:
            merchant = r["type"] == "MERCHANT_ID" and r["account"] == settings.store_mchid
            funds.add_receiver(r["type"], r["account"], settings.store_name if merchant else None)
        result = funds.share(sharing.transaction_id, f"ps{order.order_id}", receivers)
        _settle_shared(order.order_id, sharing, now)
        store.move(order.order_id, "planned", "shared", wechat_order_id=result.order_id)
    else:
        store.move(order.order_id, "planned", "shared")


def _settle_shared(order_id: str, sharing: store.Sharing, now: datetime) -> None:
    """Each distributor paid by the split: its commission -> shared, by what WeChat paid (what its
    frozen remainder does not cover, after a clawback, is a debt on available: frozen never goes
    below zero, and a void commission WeChat paid still gets its entry)."""
    for r in sharing.receivers:
        if r["level"] is None:
            continue
        for _ in range(5):
            c = commission_store.get_commission(order_id, r["level"])
            if c is None or c.status == "shared":
                break
            try:
                commission_store.settle(c, "shared", now, amount_fen=r["amount"])
                break
            except ConditionFailed:
                continue  # clawed back meanwhile: settle what was paid against it as it now is


def return_store_share(order: orders.Order) -> int:
    """After a refund of a shared order: return the store's share, pro rata to each refund, once
    per refund (out_return_no = out_refund_no)."""
    from chalicelib.services.commissions import ShareReturnPending, successful_refunds

    sharing = store.get(order.order_id)
    if sharing is None or sharing.status not in ("shared", "finished") or not sharing.store_fen:
        return 0
    store_mchid = next(r["account"] for r in sharing.receivers if r["type"] == "MERCHANT_ID")
    returned = 0
    for refund in successful_refunds(order):  # raises RefundsNotListedYet while the index lags
        if refund.out_refund_no in sharing.returns:
            continue
        left = sharing.store_fen - sharing.returned_fen
        amount = left if order.status == "refunded" else min(left, sharing.store_fen * refund.amount_fen //
                                                              max(order.payable_fen, 1))
        if amount <= 0:
            continue
        try:
            answer = _funds().return_share(f"ps{order.order_id}", refund.out_refund_no, store_mchid, amount)
        except PAY_FAILURES as error:
            log.warning("profit sharing return failed; the batch comes again", order_id=order.order_id,
                        error=type(error).__name__, code=getattr(error, "code", None))
            raise ShareReturnPending(f"order {order.order_id}: return {refund.out_refund_no} failed") from error
        if store.record_return(order.order_id, refund.out_refund_no, answer.amount_fen):
            returned += answer.amount_fen
        sharing = store.get(order.order_id) or sharing
    return returned
