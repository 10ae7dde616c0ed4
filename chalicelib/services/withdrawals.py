"""Withdrawals of available commission, paid by a transfer to the user's WeChat balance.

- request: the id is made from (user, request_id), so a repeat is the same withdrawal (200);
  the amount moves available -> pending in the withdrawal's own transaction, on condition that
  available >= amount (so concurrent requests never take more than is available);
- approve (the merchant): requested -> approved, then the transfer is asked for with the
  withdrawal id as out_batch_no and out_detail_no, and its detail read back: SUCCESS moves
  pending -> withdrawn (paid), FAIL pending -> available (failed); anything else leaves it approved.
  `failed` (terminal, pending -> available once, by its `returned` entry) is also where a transfer
  ends that WeChat will not make whatever we ask: the payee's account is gone, or WeChat refused
  the batch for good (a 4xx other than SYSTEM_ERROR / FREQUENCY_LIMITED / NOT_ENOUGH) and has no
  detail of it. Never retried forever; the user may ask for a new withdrawal.
  Approving again asks WeChat again with the same numbers: the same transfer, never a second.
  A crash between the approval and the transfer leaves it approved: `heal_approved` (every
  10 minutes) asks again for approved withdrawals older than a minute;
- reject: requested -> rejected, pending -> available.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from chalicelib import clock, distribution_settings
from chalicelib.domain import cursors
from chalicelib.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from chalicelib.log import get_logger
from chalicelib.settings import get_settings
from chalicelib.storage import commissions, users
from chalicelib.storage import withdrawals as store
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.withdrawals import Withdrawal
from chalicelib.wechat.pay_types import PayApiError, PaySignatureError, PayUnavailable

log = get_logger(__name__)
HEAL_AFTER = timedelta(minutes=1)
REMARK = "佣金提现"
# Refusals WeChat may change its mind on (busy, rate-limited, the merchant's balance topped up).
TRANSIENT_REFUSALS = frozenset({"SYSTEM_ERROR", "FREQUENCY_LIMITED", "NOT_ENOUGH"})


def withdrawal_id_for(user_id: str, request_id: str) -> str:
    return "w" + hashlib.sha256(f"{user_id}|{request_id}".encode()).hexdigest()[:24]


def request_withdrawal(user_id: str, amount_fen: int, request_id: str) -> tuple[Withdrawal, bool]:
    """(the withdrawal, whether it is new)."""
    settings = distribution_settings.load()
    if not settings.withdrawal_min_fen <= amount_fen <= settings.withdrawal_max_fen:
        raise BadRequest(f"A withdrawal is {settings.withdrawal_min_fen}-{settings.withdrawal_max_fen} fen",
                         code="invalid_withdrawal_amount",
                         details=[{"field": "amount_fen", "message": "out of range"}])
    withdrawal = Withdrawal(withdrawal_id_for(user_id, request_id), user_id, request_id, amount_fen, "requested",
                            clock.now())
    try:
        store.create(withdrawal)
        log.info("withdrawal requested", withdrawal_id=withdrawal.withdrawal_id, amount_fen=amount_fen)
        return withdrawal, True
    except ConditionFailed:
        pass
    except commissions.Contended:
        raise ServiceUnavailable("The commission account is busy; try again") from None
    existing = store.get(withdrawal.withdrawal_id)
    if existing is not None:
        if existing.amount_fen != amount_fen:
            raise Conflict("This request_id was used for another amount", code="request_id_reused")
        return existing, False
    available = commissions.get_account(user_id)["available_fen"]
    raise Conflict("More than the available commission", code="insufficient_commission",
                   details=[{"requested_fen": amount_fen, "available_fen": available}])


def get_withdrawal(withdrawal_id: str) -> Withdrawal:
    withdrawal = store.get(withdrawal_id)
    if withdrawal is None:
        raise NotFound("No such withdrawal", code="withdrawal_not_found")
    return withdrawal


def list_withdrawals(status: str, limit: int, cursor: str | None) -> tuple[list[Withdrawal], str | None]:
    secret, scope = get_settings().auth_token_secret, f"admin-withdrawals:{status}"
    page, last_key = store.list_by_status(status, limit, cursors.decode_cursor(cursor, secret, scope))
    return page, cursors.encode_cursor(last_key, secret, scope)


def approve(withdrawal_id: str) -> Withdrawal:
    withdrawal = get_withdrawal(withdrawal_id)
    funds = _funds()  # a store that cannot transfer (Pay v2) refuses before anything changes
    if withdrawal.status == "requested":
        try:
            store.approve(withdrawal_id, clock.now())
        except ConditionFailed:
            pass  # approved or rejected meanwhile: read it again
        withdrawal = get_withdrawal(withdrawal_id)
    if withdrawal.status == "rejected":
        raise Conflict("This withdrawal was rejected", code="invalid_withdrawal_state")
    if withdrawal.status == "approved":
        _transfer(withdrawal, funds)
    return get_withdrawal(withdrawal_id)


def reject(withdrawal_id: str, reason: str) -> Withdrawal:
    withdrawal = get_withdrawal(withdrawal_id)
    if withdrawal.status == "requested":
        try:
            store.finish(withdrawal, "requested", "rejected", "returned", clock.now(), reason=reason)
        except ConditionFailed:
            pass
        except commissions.Contended:
            raise ServiceUnavailable("The commission account is busy; try again") from None
        withdrawal = get_withdrawal(withdrawal_id)
    if withdrawal.status != "rejected":
        raise Conflict(f"This withdrawal is {withdrawal.status}", code="invalid_withdrawal_state")
    return withdrawal


def _funds():
    from chalicelib.services.pay_gateway import gateway
    from chalicelib.wechat.pay_v3_funds import FundsV3

    pay = gateway()
    if pay.v3 is None:
        raise Conflict("Transfers to the WeChat balance need WeChat Pay v3", code="transfer_unavailable")
    return FundsV3(pay.v3)


def _transfer(withdrawal: Withdrawal, funds) -> str:
    """Ask for the transfer (again: the same one) and follow WeChat's word on it."""
    user = users.get_user(withdrawal.user_id, consistent=True)
    if user is None:  # the account was deleted: nobody to pay, ever
        return _fail(withdrawal, "no_user")
    no = withdrawal.withdrawal_id
    refusal = None
    try:
        batch_id = funds.transfer(no, user.openid, withdrawal.amount_fen, REMARK)
    except PayApiError as error:  # e.g. a batch asked before: its detail says what happened
        log.warning("transfer refused; reading its detail", withdrawal_id=no, code=error.code)
        batch_id, refusal = None, error
    except (PayUnavailable, PaySignatureError) as error:
        log.warning("transfer failed; the sweep asks again", withdrawal_id=no, error=type(error).__name__)
        return "retry"
    try:
        detail = funds.transfer_detail(no)
    except PayApiError as error:
        if error.code in ("NOT_FOUND", "RESOURCE_NOT_EXISTS") and _final(refusal):
            return _fail(withdrawal, refusal.code)  # refused for good, and no such transfer exists
        log.warning("transfer detail unknown; the sweep asks again", withdrawal_id=no, code=error.code)
        return "retry"
    except (PayUnavailable, PaySignatureError) as error:
        log.warning("transfer detail unknown; the sweep asks again", withdrawal_id=no, error=type(error).__name__)
        return "retry"
    now = clock.now()
    try:
        if detail.status == "SUCCESS":
            store.finish(withdrawal, "approved", "paid", "paid", now, transfer_id=detail.batch_id or batch_id)
        elif detail.status == "FAIL":
            store.finish(withdrawal, "approved", "failed", "returned", now, reason=detail.fail_reason or "FAIL")
        else:
            return "processing"
    except ConditionFailed:
        return "finished"  # finished by a concurrent approve or the sweep
    except commissions.Contended:
        return "retry"  # the transfer is done at WeChat; the sweep records it (same numbers)
    log.info("withdrawal transferred", withdrawal_id=no, status=detail.status)
    return detail.status.lower()


def _final(refusal: PayApiError | None) -> bool:
    if refusal is None:
        return False
    status = refusal.http_status or 0
    return 400 <= status < 500 and status != 429 and refusal.code not in TRANSIENT_REFUSALS


def _fail(withdrawal: Withdrawal, reason: str) -> str:
    """approved -> failed, pending -> available (once: the status condition and the entry's key)."""
    try:
        store.finish(withdrawal, "approved", "failed", "returned", clock.now(), reason=reason)
    except ConditionFailed:
        return "finished"
    except commissions.Contended:
        return "retry"
    log.warning("withdrawal failed for good; the amount is available again", withdrawal_id=withdrawal.withdrawal_id,
                reason=reason)
    return "failed"


def heal_approved(limit: int = 50, now: datetime | None = None) -> dict[str, int]:
    """Approved withdrawals a crash (or WeChat) left unfinished: ask again, same numbers."""
    now = now or clock.now()
    page, _ = store.list_by_status("approved", limit, None)
    due = [w for w in page if w.status == "approved" and (w.approved_at or now) <= now - HEAL_AFTER]
    if not due:
        return {"asked": 0}
    funds = _funds()  # approved withdrawals exist only where transfers could be asked for
    for withdrawal in due:
        _transfer(withdrawal, funds)
    return {"asked": len(due)}
