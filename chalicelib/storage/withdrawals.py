"""Table `withdrawals`: one item per withdrawal, keyed by an id made from the user and their
`request_id` (so a repeated request is the same item, put with `attribute_not_exists`).

Statuses: `requested` -> `approved` (the merchant's word; the transfer is asked for, with the
withdrawal id as WeChat's out_batch_no/out_detail_no) -> `paid` | `failed` (WeChat refused
it: the money goes back to available); `requested` -> `rejected` (back to available). Each
change is conditioned on the status read, in one transaction with its ledger entry and account
move (storage/commissions.py). Index `by_status` (status, created_at), keys only: the merchant's
list and the sweep that finishes approved withdrawals a crash left half-done.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from chalicelib.storage import commissions
from chalicelib.storage.base import KeysOnlyIndex, TableMeta, table_name
from chalicelib.storage.commissions import CommissionAccountRecord, Entry


class ByStatus(KeysOnlyIndex):
    class Meta(KeysOnlyIndex.Meta):
        index_name = "by_status"

    status = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class WithdrawalRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("withdrawals")

    withdrawal_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    request_id = UnicodeAttribute()
    amount_fen = NumberAttribute()
    status = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    approved_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    reason = UnicodeAttribute(null=True)  # a rejection's, or WeChat's failure
    transfer_id = UnicodeAttribute(null=True)  # WeChat's batch id

    by_status = ByStatus()


@dataclass(frozen=True)
class Withdrawal:
    withdrawal_id: str
    user_id: str
    request_id: str
    amount_fen: int
    status: str
    created_at: datetime
    approved_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str | None = None
    transfer_id: str | None = None


def _withdrawal(r: WithdrawalRecord) -> Withdrawal:
    return Withdrawal(r.withdrawal_id, r.user_id, r.request_id, int(r.amount_fen), r.status, r.created_at,
                      r.approved_at, r.finished_at, r.reason, r.transfer_id)


def get(withdrawal_id: str) -> Withdrawal | None:
    try:
        return _withdrawal(WithdrawalRecord.get(withdrawal_id, consistent_read=True))
    except WithdrawalRecord.DoesNotExist:
        return None


def list_by_status(status: str, limit: int, cursor: dict[str, Any] | None = None,
                   created_before: datetime | None = None) -> tuple[list[Withdrawal], dict[str, Any] | None]:
    """Withdrawals newest first: the index's keys, then the items themselves (consistent reads)."""
    condition = WithdrawalRecord.created_at < created_before if created_before else None
    query = WithdrawalRecord.by_status.query(status, condition, scan_index_forward=False, limit=limit,
                                             last_evaluated_key=cursor)
    ids = [r.withdrawal_id for r in query]
    found = {r.withdrawal_id: _withdrawal(r) for r in WithdrawalRecord.batch_get(ids, consistent_read=True)}
    return [found[i] for i in ids if i in found], query.last_evaluated_key


@commissions.retry_contended
def create(w: Withdrawal) -> None:
    """The withdrawal and its move available -> pending, on condition available >= amount.
    Raises ConditionFailed (it exists, or too little is available)."""
    with commissions._transaction() as transaction:
        transaction.save(WithdrawalRecord(w.withdrawal_id, user_id=w.user_id, request_id=w.request_id,
                                          amount_fen=w.amount_fen, status="requested", created_at=w.created_at),
                         condition=WithdrawalRecord.withdrawal_id.does_not_exist())
        commissions.add_entry(transaction, Entry(w.user_id, f"withdraw#{w.withdrawal_id}", "withdraw", w.amount_fen,
                                                 w.withdrawal_id, w.created_at),
                              condition=CommissionAccountRecord.available_fen >= w.amount_fen)


def approve(withdrawal_id: str, now: datetime) -> None:
    """requested -> approved. Raises ConditionFailed."""
    from chalicelib.storage.base import ConditionFailed, condition_failure_as

    with condition_failure_as(ConditionFailed):
        WithdrawalRecord(withdrawal_id).update(
            actions=[WithdrawalRecord.status.set("approved"), WithdrawalRecord.approved_at.set(now)],
            condition=WithdrawalRecord.status == "requested")


@commissions.retry_contended
def finish(w: Withdrawal, expected: str, status: str, kind: str, now: datetime, reason: str | None = None,
           transfer_id: str | None = None) -> None:
    """expected -> status (paid, failed, rejected) with its entry (paid: pending -> withdrawn;
    returned: pending -> available). Raises ConditionFailed (finished meanwhile)."""
    actions = [WithdrawalRecord.status.set(status), WithdrawalRecord.finished_at.set(now)]
    if reason:
        actions.append(WithdrawalRecord.reason.set(reason[:200]))
    if transfer_id:
        actions.append(WithdrawalRecord.transfer_id.set(transfer_id))
    with commissions._transaction() as transaction:
        transaction.update(WithdrawalRecord(w.withdrawal_id), actions=actions,
                           condition=WithdrawalRecord.status == expected)
        commissions.add_entry(transaction, Entry(w.user_id, f"{kind}#{w.withdrawal_id}", kind, w.amount_fen,
                                                 w.withdrawal_id, now))
