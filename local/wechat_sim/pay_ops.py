"""Order/refund rules shared by Pay v2 and v3, answering with symbolic outcomes
that each API turns into its own error format; plus paying (as a user would)
and completing refunds, which emit notifies."""

from __future__ import annotations

from typing import Any

from . import pay_messages, pay_notify
from .pay_keys import pay_config
from .pay_notify import DeliveryKnobs, NotifyJob
from .pay_store import (Refund, Transaction, book, finish_refund, mark_paid, new_prepay_id,
                        new_refund_id, refunded_amount)

PREPAY_TTL_S = 7200


class PayError(Exception):
    """A dev-endpoint refusal: (http status, message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def place_order(state: Any, fields: dict[str, Any]) -> tuple[str, Transaction]:
    """Create a transaction or answer for an existing one.  Outcomes: "created",
    "same" (identical request: same prepay_id), "paid", "closed", "repeat"
    (same out_trade_no, different parameters)."""
    pay, now = book(state), state.now()
    with state.lock:
        txn = pay.transactions.get(fields["out_trade_no"])
        if txn is not None:
            if txn.paid:
                return "paid", txn
            if txn.trade_state == "CLOSED":
                return "closed", txn
            if txn.fingerprint != fields["fingerprint"]:
                return "repeat", txn
            if now - txn.prepay_at > PREPAY_TTL_S:  # an expired prepay_id is replaced
                txn.prepay_id, txn.prepay_at = new_prepay_id(now), now
                pay.by_prepay_id[txn.prepay_id] = txn.out_trade_no
            return "same", txn
        prepay = new_prepay_id(now)
        txn = Transaction(prepay_id=prepay, created_at=now, prepay_at=now, **fields)
        pay.transactions[txn.out_trade_no] = txn
        pay.by_prepay_id[prepay] = txn.out_trade_no
        return "created", txn


def find_transaction(state: Any, out_trade_no: str | None, transaction_id: str | None) -> Transaction | None:
    pay = book(state)
    with state.lock:
        if transaction_id:
            out_trade_no = pay.by_transaction_id.get(transaction_id)
        return pay.transactions.get(out_trade_no or "")


def close_order(state: Any, txn: Transaction) -> str:
    """-> "closed" | "already_closed" | "paid"."""
    with state.lock:
        if txn.paid:
            return "paid"
        if txn.trade_state == "CLOSED":
            return "already_closed"
        txn.trade_state = "CLOSED"
        return "closed"


def request_refund(state: Any, txn: Transaction, out_refund_no: str, refund: int, total: int,
                   api: str, notify_url: str | None, reason: str, **extra: Any) -> tuple[str, Refund | None]:
    """Outcomes: "created", "same", "mismatch" (out_refund_no reused with other
    amounts), "not_paid", "total_mismatch", "fully_refunded", "exceeds"."""
    pay, now = book(state), state.now()
    fingerprint = f"{txn.out_trade_no}:{refund}:{total}"
    with state.lock:
        existing = pay.refunds.get(out_refund_no)
        if existing is not None:
            return ("same" if existing.fingerprint == fingerprint else "mismatch"), existing
        if not txn.paid:
            return "not_paid", None
        if total != txn.total:
            return "total_mismatch", None
        left = txn.total - refunded_amount(pay, txn)
        if left <= 0:
            return "fully_refunded", None
        if refund > left:
            return "exceeds", None
        record = Refund(out_refund_no=out_refund_no, refund_id=new_refund_id(now),
                        out_trade_no=txn.out_trade_no, transaction_id=txn.transaction_id or "",
                        refund=refund, total=total, api=api,
                        notify_url=notify_url or pay_config(state).refund_notify_url,
                        reason=reason, fingerprint=fingerprint, created_at=now, **extra)
        pay.refunds[out_refund_no] = record
        txn.refunds.append(out_refund_no)
        txn.trade_state = "REFUND"
    _schedule_completion(state, out_refund_no)
    return "created", record


def _schedule_completion(state: Any, out_refund_no: str) -> None:
    delay_ms = pay_config(state).refund_delay_ms
    if delay_ms is None:
        return  # manual: POST /__sim/pay/refund-notify

    def complete_later() -> None:
        if state.stopping.wait(delay_ms / 1000.0):
            return
        try:
            complete_refund(state, out_refund_no, "SUCCESS", DeliveryKnobs(), only_if_processing=True)
        except (PayError, pay_notify.TooBusy, pay_notify.KnobError):
            pass  # reset meanwhile, or too busy: the refund stays PROCESSING

    try:
        pay_notify.runtime(state).spawn(complete_later)
    except pay_notify.TooBusy:
        pass


def complete_refund(state: Any, out_refund_no: str, status: str, knobs: DeliveryKnobs,
                    only_if_processing: bool = False) -> tuple[Refund, list[NotifyJob]]:
    """PROCESSING (or ABNORMAL) -> status and notify; a finished refund just notifies again."""
    if status not in pay_messages.REFUND_EVENTS:
        raise PayError(400, f"status must be one of {sorted(pay_messages.REFUND_EVENTS)}")
    pay = book(state)
    with state.lock:
        refund = pay.refunds.get(out_refund_no)
        if refund is None:
            raise PayError(404, f"no refund {out_refund_no!r}")
        pay_messages.check_corrupt(refund.api, "refund", knobs.corrupt)
        # ABNORMAL is not final: the merchant finishes it by hand on the merchant platform
        # (to the buyer's bank card or balance: SUCCESS) or gives up on it (CLOSED).
        if refund.status == "PROCESSING" or (refund.status == "ABNORMAL" and status != "ABNORMAL"):
            finish_refund(pay, refund, status, state.now())
            txn = pay.transactions[refund.out_trade_no]
            if status == "CLOSED" and refunded_amount(pay, txn) == 0:
                txn.trade_state = "SUCCESS"
        elif only_if_processing:
            return refund, []
        elif refund.status != status:
            raise PayError(409, f"refund is already {refund.status}")
        txn = pay.transactions[refund.out_trade_no]
        jobs = pay_notify.make_jobs(state, txn, refund, knobs)
    pay_notify.dispatch(state, jobs, knobs)
    return refund, jobs


def pay_order(state: Any, out_trade_no: str, openid: str | None, force: bool,
              knobs: DeliveryKnobs) -> tuple[Transaction, bool, list[NotifyJob]]:
    """The user pays: NOTPAY -> SUCCESS, then the pay notify goes out.  Paying
    a paid order sends the notify again.  ``force`` pays a CLOSED or expired
    order (the user paid just before the close reached WeChat)."""
    pay = book(state)
    with state.lock:
        txn = pay.transactions.get(out_trade_no)
        if txn is None:
            raise PayError(404, f"no transaction with out_trade_no {out_trade_no!r}")
        if not txn.paid and not force:
            if txn.trade_state == "CLOSED":
                raise PayError(409, "order is CLOSED (pass force: true to pay it anyway)")
            if txn.time_expire is not None and state.now() > txn.time_expire:
                raise PayError(409, "order is past its time_expire (pass force: true to pay anyway)")
        if openid and openid != txn.openid and not force:
            raise PayError(409, "openid is not the payer of this order")
        pay_messages.check_corrupt(txn.api, "pay", knobs.corrupt)
        newly = mark_paid(pay, txn, state.now())
        jobs = pay_notify.make_jobs(state, txn, None, knobs)
    pay_notify.dispatch(state, jobs, knobs)
    return txn, newly, jobs

