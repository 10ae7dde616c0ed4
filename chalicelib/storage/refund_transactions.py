"""Completing a refund: the refund's status and the restock of its unshipped units, together.

The refund moves processing -> success under a condition, so however many notifies, queries
and retries report the same success, the units come back to available stock exactly once.
"""
from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.payments import Refund, RefundRecord
from chalicelib.storage.skus import SkuRecord


def complete_refund_restocking(refund: Refund, refund_id: str | None, now: datetime) -> None:
    """Raises ConditionFailed when the refund is no longer processing (completed before)."""
    restocking = refund.restock == "pending"
    actions = [RefundRecord.status.set("success"), RefundRecord.completed_at.set(now)]
    if refund_id:
        actions.append(RefundRecord.refund_id.set(refund_id))
    if restocking:
        actions.append(RefundRecord.restock.set("done"))
    try:
        with TransactWrite(connection=RefundRecord._get_connection().connection) as transaction:
            transaction.update(RefundRecord(refund.out_refund_no), actions=actions,
                               condition=RefundRecord.status == "processing")
            for sku_id, units in refund.lines if restocking else ():
                transaction.update(SkuRecord(sku_id),
                                   actions=[SkuRecord.sold.add(-units), SkuRecord.available.add(units)],
                                   condition=SkuRecord.sold >= units)
    except TransactWriteError as error:
        reasons = error.cancellation_reasons or []
        if reasons and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
            raise ConditionFailed() from error
        raise
