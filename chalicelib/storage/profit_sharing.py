"""Table `profit_sharing`: one item per order paid with settle_info.profit_sharing, from its
completion to the unfreeze of what was not split.

`scheduled` (due at completed_at + the after-sales window, sparse index `by_due`) -> `planned`
(the receivers and amounts fixed before WeChat is asked: a retry sends the same out_order_no with
the same content) -> `shared` (WeChat split it; the distributors' commissions settled as `shared`)
-> `finished` (the rest unfrozen; off the index). Each move is conditioned on the status read.
Returns of the store's share after a refund are recorded in `returns` (out_refund_nos), once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pynamodb.attributes import (ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute,
                                 UnicodeSetAttribute, UTCDateTimeAttribute)
from pynamodb.models import Model

from chalicelib.storage.base import ConditionFailed, KeysOnlyIndex, TableMeta, condition_failure_as, table_name

DUE = "due"


class ByDue(KeysOnlyIndex):
    class Meta(KeysOnlyIndex.Meta):
        index_name = "by_due"

    sharing_due = UnicodeAttribute(hash_key=True)
    due_at = UTCDateTimeAttribute(range_key=True)


class ReceiverAttribute(MapAttribute):
    type = UnicodeAttribute()
    account = UnicodeAttribute()
    amount = NumberAttribute()
    description = UnicodeAttribute()
    level = NumberAttribute(null=True)  # a distributor's commission level; None for the store


class ProfitSharingRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("profit_sharing")

    order_id = UnicodeAttribute(hash_key=True)
    status = UnicodeAttribute()
    transaction_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    receivers = ListAttribute(of=ReceiverAttribute, null=True)
    wechat_order_id = UnicodeAttribute(null=True)
    returns = UnicodeSetAttribute(null=True)
    returned_fen = NumberAttribute(default=0)
    sharing_due = UnicodeAttribute(null=True)
    due_at = UTCDateTimeAttribute(null=True)

    by_due = ByDue()


@dataclass(frozen=True)
class Sharing:
    order_id: str
    status: str
    transaction_id: str
    receivers: tuple[dict, ...]
    returns: frozenset[str]
    returned_fen: int
    due_at: datetime | None

    @property
    def store_fen(self) -> int:
        return sum(r["amount"] for r in self.receivers if r["type"] == "MERCHANT_ID")


def _sharing(r: ProfitSharingRecord) -> Sharing:
    return Sharing(r.order_id, r.status, r.transaction_id,
                   tuple({"type": x.type, "account": x.account, "amount": int(x.amount), "description": x.description,
                          "level": int(x.level) if x.level is not None else None} for x in r.receivers or ()),
                   frozenset(r.returns or ()), int(r.returned_fen or 0), r.due_at)


def get(order_id: str) -> Sharing | None:
    try:
        return _sharing(ProfitSharingRecord.get(order_id, consistent_read=True))
    except ProfitSharingRecord.DoesNotExist:
        return None


def due_order_ids(now: datetime, limit: int) -> list[str]:
    return [r.order_id for r in ProfitSharingRecord.by_due.query(DUE, ProfitSharingRecord.due_at <= now, limit=limit)]


def create(order_id: str, transaction_id: str, due_at: datetime, now: datetime) -> bool:
    try:
        with condition_failure_as(ConditionFailed):
            ProfitSharingRecord(order_id, status="scheduled", transaction_id=transaction_id, created_at=now,
                                sharing_due=DUE, due_at=due_at).save(
                condition=ProfitSharingRecord.order_id.does_not_exist())
    except ConditionFailed:
        return False
    return True


def move(order_id: str, expected: str, status: str, *, receivers: list[dict] | None = None,
         wechat_order_id: str | None = None, done: bool = False) -> None:
    """expected -> status. Raises ConditionFailed."""
    actions = [ProfitSharingRecord.status.set(status)]
    if receivers is not None:
        actions.append(ProfitSharingRecord.receivers.set([ReceiverAttribute(**r) for r in receivers]))
    if wechat_order_id:
        actions.append(ProfitSharingRecord.wechat_order_id.set(wechat_order_id))
    if done:
        actions += [ProfitSharingRecord.sharing_due.remove(), ProfitSharingRecord.due_at.remove()]
    with condition_failure_as(ConditionFailed):
        ProfitSharingRecord(order_id).update(actions=actions, condition=ProfitSharingRecord.status == expected)


def record_return(order_id: str, out_refund_no: str, amount_fen: int) -> bool:
    try:
        with condition_failure_as(ConditionFailed):
            ProfitSharingRecord(order_id).update(
                actions=[ProfitSharingRecord.returns.add({out_refund_no}),
                         ProfitSharingRecord.returned_fen.add(amount_fen)],
                condition=ProfitSharingRecord.order_id.exists() & ~ProfitSharingRecord.returns.contains(out_refund_no))
    except ConditionFailed:
        return False
    return True
