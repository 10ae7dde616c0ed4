"""Counting units sold into the products' sales counts (what `sort=sales` sorts by), off the hot
path: a scheduled batch, not a write in the payment notify.

Each run takes the paid orders whose units are not counted yet (the orders' by_status index,
within LOOKBACK) and the completed refunds queued for a correction (the refunds' sparse
`refunds_due` index, queue "sales"), adds their units up per product, and commits each
product's change together with one marker per (order or refund, product) on condition the
marker is new, so a crash, a retried run or two runs at once count nothing twice. Then the
order (or refund) is marked done. A refund's units come off only after its order's were counted.
docs/decisions.md says why a batch and not a stream.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from itertools import islice

from chalicelib import clock
from chalicelib.domain.sales import merge, refund_marks, sold_marks
from chalicelib.log import get_logger
from chalicelib.storage import catalog, idempotency, order_lists, orders, payments, refund_transactions
from chalicelib.storage.payments import SALES_DUE, Refund

log = get_logger(__name__)
LOOKBACK = timedelta(days=7)  # a paid order not counted within this (the job down a week) is not counted
MARKS_KEPT = timedelta(days=30)  # markers outlive every way an order or refund can come back
MARKS_PER_TRANSACTION = 25  # a product's change takes up to ~50 items (listings); DynamoDB allows 100
ATTEMPTS = 3


def count_sales(limit: int = 200) -> dict[str, int]:
    now = clock.now()
    paid = order_lists.orders_with_uncounted_sales(now - LOOKBACK, limit)
    corrections = _ready_corrections(now, limit)
    by_product: dict[str, dict[str, int]] = {}
    for order in paid:
        merge(by_product, sold_marks(order.order_id, order.lines))
    for refund, order in corrections:
        merge(by_product, refund_marks(refund.out_refund_no, order.lines, refund.lines))
    failed = {product_id for product_id, marks in by_product.items() if not _count(product_id, marks, now)}
    for order in paid:
        if not {line.product_id for line in order.lines} & failed:
            orders.mark_sales_counted(order.order_id)
    for refund, order in corrections:
        if not {line.product_id for line in order.lines} & failed:
            refund_transactions.sales_corrected(refund.out_refund_no)
    return {"orders": len(paid), "refunds": len(corrections), "products": len(by_product), "failed": len(failed)}


def _ready_corrections(now: datetime, limit: int) -> list[tuple[Refund, orders.Order]]:
    """Completed refunds queued for the sales job whose order's units were counted."""
    ready = []
    for out_refund_no in payments.due_refund_numbers(now, limit, queue=SALES_DUE):
        refund = payments.get_refund(out_refund_no)  # re-read: the index is eventually consistent
        order = orders.get_order(refund.order_id) if refund else None
        if refund is None or order is None or not refund.lines:
            refund_transactions.sales_corrected(out_refund_no)  # nothing to give back
        elif order.sales_counted:
            ready.append((refund, order))
        elif order.created_at < now - LOOKBACK:
            refund_transactions.sales_corrected(out_refund_no)  # its sale was never counted either
        # else: its order's units are counted first (this run or the next), then these come off
    return ready


def _count(product_id: str, marks: dict[str, int], now: datetime) -> bool:
    """Apply `marks` to the product, each at most once; False if it could not (logged; retried
    on the next run, the markers keeping what did get counted)."""
    try:
        pending = _uncounted(marks)
        while pending:
            chunk = dict(islice(pending.items(), MARKS_PER_TRANSACTION))
            _count_chunk(product_id, chunk, now)
            pending = {key: units for key, units in pending.items() if key not in chunk}
        return True
    except catalog.ProductMissing:
        log.warning("sold units of a product that no longer exists", product_id=product_id)
        return True
    except Exception:  # noqa: BLE001 - one product's trouble must not stop the others
        log.exception("counting sales failed; the next run tries again", product_id=product_id)
        return False


def _count_chunk(product_id: str, chunk: dict[str, int], now: datetime) -> None:
    for _ in range(ATTEMPTS):
        try:
            catalog.add_sales_once(product_id, chunk, now, keep_marks_until=now + MARKS_KEPT)
            return
        except catalog.SalesAlreadyCounted:  # a crashed or concurrent run counted some: send the rest
            chunk = _uncounted(chunk)
            if not chunk:
                return
    raise RuntimeError(f"sales of {product_id} kept racing another run")


def _uncounted(marks: dict[str, int]) -> dict[str, int]:
    done = idempotency.existing_keys(sorted(marks))
    return {key: units for key, units in marks.items() if key not in done}
