"""Commissions (分销), derived from the orders table's stream so the paying and refunding paths
are not touched.

Each order record that moves a status (paid, completed, refunded), the refunded total or a group
order's wait for its group makes `reconcile(order_id)` run: it re-reads the order item (never an
image or an index) and then
- earns: a paid, shipped or completed order (a group-buy order: once its group succeeded) without
  commissions gets one per level (the buyer's referrer, bound before the order was placed; at 2
  levels also that referrer's referrer), each line at its product's rate (domain/commissions.py),
  frozen, in one transaction whose puts are conditioned on not existing: a redelivered record
  earns nothing twice. An order already wholly refunded or cancelled when it is read earns nothing;
- claws back every successful refund of the order's own payment not yet clawed (keyed by its
  out_refund_no on the commission item, exactly once), from frozen, or from available once
  settled (available may then go negative: a debt netted against later commissions);
- schedules a completed order's frozen commissions to settle at completed_at + COMMISSION_FREEZE_DAYS
  (the sparse `by_settle` index); `settle_due` (every 15 minutes) reconciles each due order once
  more, catching a refund an index had not shown yet, then moves frozen -> available.
A profit-sharing order (the prepay was flagged and COMMISSION_SETTLEMENT=profit_sharing) settles
through services/profit_sharing.py instead: its commissions are paid by the split.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterable

from chalicelib import clock, distribution_settings
from chalicelib.domain import commissions as rules
from chalicelib.errors import BadRequest, NotFound
from chalicelib.log import get_logger
from chalicelib.storage import commissions as store
from chalicelib.storage import orders, payments, users
from chalicelib.storage.base import ConditionFailed

log = get_logger(__name__)
EARNING_STATUSES = ("paid", "shipped", "completed")
ATTEMPTS = 5


# ------------------------------------------------------------------------------ the stream

def order_ids_to_reconcile(records: Iterable[dict[str, Any]], orders_table: str) -> list[str]:
    """Orders whose record moved a status or the refunded total, each once, in stream order."""
    from chalicelib.storage.analytics import plain

    seen: list[str] = []
    for record in records:
        arn = record.get("eventSourceARN", "")
        if f"table/{orders_table}/" not in arn or record.get("eventName") == "REMOVE":
            continue
        change = record.get("dynamodb") or {}
        old, new = plain(change.get("OldImage")) or {}, plain(change.get("NewImage")) or {}
        moved = any(old.get(name) != new.get(name) for name in ("status", "refunded_fen", "awaiting_group"))
        if moved and new.get("order_id") and new.get("paid_at") and new["order_id"] not in seen:
            seen.append(new["order_id"])
    return seen


def consume(records: list[dict[str, Any]]) -> dict[str, int]:
    """The stream consumer's part (jobs/analytics.py). Raises on a storage failure: the batch is
    delivered again and every step is idempotent."""
    ids = order_ids_to_reconcile(records, orders.OrderRecord.Meta.table_name)
    if not ids:
        return {"orders": 0, "reconciled": 0}
    try:
        settings = distribution_settings.load()
    except distribution_settings.DistributionSettingsError as error:
        # Raised, not swallowed: the batch comes again until the settings are mended (a batch
        # returned normally would leave these orders' commissions never earned).
        log.error("commissions wait: distribution is misconfigured", detail=str(error), orders=len(ids))
        raise
    for order_id in ids:
        reconcile(order_id, settings)
    return {"orders": len(ids), "reconciled": len(ids)}


def reconcile(order_id: str, settings: distribution_settings.DistributionSettings | None = None,
              now: datetime | None = None) -> list[store.Commission]:
    settings = settings or distribution_settings.load()
    now = now or clock.now()
    order = orders.get_order(order_id)
    if order is None:
        return []
    existing = store.commissions_of_order(order_id)
    # A group-buy order earns once its group succeeded (a failed group is refunded: nothing to claw).
    waiting = getattr(order, "awaiting_group", False)
    if not existing and order.status in EARNING_STATUSES and order.paid_at is not None and not waiting:
        existing = _earn(order, settings, now)
    out = []
    for commission in existing:
        commission = _claw_back_refunds(order, commission, now)
        if order.status == "completed" and commission.status == "frozen" and commission.settle_at is None:
            due = (order.completed_at or now) + timedelta(days=settings.freeze_days)
            store.schedule_settlement(commission, due)
            commission = store.get_commission(order_id, commission.level) or commission
        out.append(commission)
    _profit_sharing_hook(order, settings, now)
    return out


def _beneficiaries(order: orders.Order, levels: int) -> list[str]:
    """[level 1, level 2] referrers of the buyer, each bound before the order was placed."""
    found: list[str] = []
    user_id = order.user_id
    for _ in range(levels):
        user = users.get_user(user_id, consistent=True)
        if (user is None or not user.referrer_id or user.referred_at is None or user.referred_at > order.created_at
                or user.referrer_id == order.user_id or user.referrer_id in found):
            break
        found.append(user.referrer_id)
        user_id = user.referrer_id
    return found


def _earn(order: orders.Order, settings, now: datetime) -> list[store.Commission]:
    beneficiaries = _beneficiaries(order, settings.levels)
    if not beneficiaries:
        return []
    rates = store.get_rates([line.product_id for line in order.lines])
    made = []
    for level, beneficiary in enumerate(beneficiaries, start=1):
        lines = rules.line_commissions(order.lines, rates, settings.default_rate, level)
        total = sum(line.commission_fen for line in lines)
        if total:
            made.append(store.Commission(order.order_id, level, beneficiary, order.user_id, "frozen", total, 0,
                                         lines, frozenset(), now))
    if not made:
        return []
    try:
        store.create_commissions(made, now)
        log.info("commissions earned", order_id=order.order_id, levels=len(made))
    except ConditionFailed:  # counted by an earlier delivery (or a concurrent one)
        pass
    return store.commissions_of_order(order.order_id)


class RefundsNotListedYet(Exception):
    """The order's refunded total is more than the refunds its index lists: the index (eventually
    consistent) is behind. The stream consumer raises it, so the batch comes again; the settle
    sweep leaves the order for its next run. Never settled or left unclawed on a lagging index."""


def successful_refunds(order: orders.Order) -> list[payments.Refund]:
    """The order's successful refunds of its own payment, each re-read; raises RefundsNotListedYet
    unless they add up to the order's `refunded_fen` (the order item is the truth, the index lags)."""
    found: list[payments.Refund] = []
    for listed in payments.refunds_of_order(order.order_id):  # the index names them; each is re-read
        refund = payments.get_refund(listed.out_refund_no)
        if (refund is not None and refund.status == payments.SUCCESS and order.transaction_id is not None
                and refund.transaction_id == order.transaction_id):
            found.append(refund)
    listed_fen = sum(refund.amount_fen for refund in found)
    if listed_fen < (order.refunded_fen or 0):
        raise RefundsNotListedYet(f"order {order.order_id}: {listed_fen} of {order.refunded_fen} fen listed")
    return found


def _claw_back_refunds(order: orders.Order, commission: store.Commission, now: datetime) -> store.Commission:
    if not order.refunded_fen or commission.status == "void":
        return commission
    for refund in successful_refunds(order):
        if refund.out_refund_no not in commission.refunds:
            commission = _claw(order, commission, refund, now)
    return commission


class ShareReturnPending(Exception):
    """A refund of a shared order whose store share WeChat has not taken back yet (its return
    failed): raised so the stream batch comes again; never finished silently."""


def _claw(order: orders.Order, commission: store.Commission, refund: payments.Refund,
          now: datetime) -> store.Commission:
    for _ in range(ATTEMPTS):
        if refund.out_refund_no in commission.refunds or commission.status == "void":
            return commission
        lines, taken = rules.clawback(commission.lines, refund.lines, whole_order=order.status == "refunded")
        try:
            store.claw_back(commission, refund.out_refund_no, lines, taken, now)
            log.info("commission clawed back", order_id=order.order_id, commission_level=commission.level,
                     amount_fen=taken)
        except ConditionFailed:
            pass  # clawed by a redelivery, or settled meanwhile: read again
        commission = store.get_commission(commission.order_id, commission.level) or commission
    return commission


def _profit_sharing_hook(order: orders.Order, settings, now: datetime) -> None:
    # The order's own flag, not today's PROFIT_SHARING: WeChat holds a flagged payment's funds
    # until they are split or unfrozen, whatever the setting has become since.
    flagged = (order.prepay or {}).get("profit_sharing")
    if flagged and order.status in ("completed", "refunded"):
        from chalicelib.services import profit_sharing

        profit_sharing.schedule(order, settings, now)


def _sharing_finished(order_id: str) -> bool:
    from chalicelib.storage import profit_sharing

    sharing = profit_sharing.get(order_id)
    return sharing is not None and sharing.status == "finished"


def settled_by_profit_sharing(order: orders.Order, settings) -> bool:
    return settings.settlement == "profit_sharing" and bool((order.prepay or {}).get("profit_sharing"))


# ------------------------------------------------------------------------------ the settle sweep

def settle_due(limit: int = 100, now: datetime | None = None) -> dict[str, int]:
    """Frozen commissions past their after-sales window -> available (each once)."""
    now = now or clock.now()
    settings = distribution_settings.load()
    settled = 0
    for order_id in store.due_order_ids(now, limit):
        try:
            reconciled = reconcile(order_id, settings, now)
        except (RefundsNotListedYet, ShareReturnPending) as waiting:
            log.warning("settlement waits (refunds index, or a profit-sharing return)", detail=str(waiting))
            continue
        for commission in reconciled:
            if commission.status != "frozen" or commission.settle_at is None or commission.settle_at > now:
                continue
            order = orders.get_order(order_id)
            if order is not None and settled_by_profit_sharing(order, settings) and not _sharing_finished(order_id):
                continue  # paid by the split (services/profit_sharing.py); what it did not pay settles after it
            try:
                store.settle(commission, "settle", now)
                settled += 1
            except (ConditionFailed, store.Contended):
                pass  # clawed back or settled meanwhile (or busy): the next sweep sees it as it is
    return {"settled": settled}


# ------------------------------------------------------------------------------ reads and rates

def ledger(user_id: str, limit: int, cursor: str | None) -> tuple[dict[str, int], list[store.Entry], str | None]:
    from chalicelib.domain import cursors
    from chalicelib.settings import get_settings

    secret, scope = get_settings().auth_token_secret, f"commissions:{user_id}"
    entries, last_key = store.entries(user_id, limit, cursors.decode_cursor(cursor, secret, scope))
    return store.get_account(user_id), entries, cursors.encode_cursor(last_key, secret, scope)


def set_rate(product_id: str, level1: int, level2: int) -> rules.Rate:
    from chalicelib.storage import products

    if not rules.valid_rate(level1, level2):
        raise BadRequest("Rates are 0-300 per mille each and at most 300 together", code="invalid_commission_rate",
                         details=[{"field": "level2_permille", "message": "level1 + level2 must be <= 300"}])
    try:
        products.get_product(product_id)
    except products.ProductMissing:
        raise NotFound("No such product", code="product_not_found") from None
    rate = rules.Rate(level1, level2)
    store.put_rate(product_id, rate, clock.now())
    return rate


def get_rate(product_id: str) -> rules.Rate:
    rate = store.get_rates([product_id]).get(product_id)
    return rate or distribution_settings.load().default_rate
