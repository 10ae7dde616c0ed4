"""After-sales: a user's refund or return request, the merchant's decision, and WeChat's refund.

A request claims its units when it is made (storage/after_sales.py): two requests can never
both hold one unit, so no unit is refunded twice. Its amount is fixed then, by the rule of
API.md ("After-sales", domain/refunds.py): cumulative over the units the order's live requests
hold, the last unit taking the remainder; the delivery fee goes with the request that makes the
whole order claimed, and only if nothing has shipped.

Statuses of a refund (unshipped goods): requested -> refunding (approved: the refund is recorded
and asked for) -> refunded (WeChat says SUCCESS); requested -> rejected (the units are released).
A return (shipped goods) waits for them: requested -> approved (the buyer is given the return
address and sends the goods back, `POST /v1/after-sales/{id}/return-shipment` with the tracking
number) -> the merchant marks them received (`.../receive`: restocked with reason `return` in the
same transaction as the refund record) -> refunding -> refunded; an approved return whose goods
never came can be rejected. A refund WeChat refuses or closes brings the request back to
`approved` with a note: approving again asks for a new refund (a new out_refund_no), rejecting
releases its units (not once a return's goods are back). Every change is conditional and a loser
re-reads, so a repeated approve, receive or reject answers the request unchanged.
"""
from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

from chalicelib import clock
from chalicelib.domain import cursors
from chalicelib.domain.order_status import InvalidOrderState
from chalicelib.domain.refunds import LineShare, refund_for_units
from chalicelib.errors import BadRequest, Conflict, NotFound, ValidationFailed
from chalicelib.log import get_logger
from chalicelib.services import refunds
from chalicelib.services.order_reads import get_user_order
from chalicelib.settings import get_settings
from chalicelib.storage import after_sales, orders, payments
from chalicelib.storage.after_sales import (APPROVED, DISPUTED, EXCHANGED, EXCHANGING, REFUNDED, REFUNDING, REJECTED,
                                            REQUESTED, AfterSale, Claims, RequestLine)
from chalicelib.storage.orders import Order, OrderLine

log = get_logger(__name__)
MAX_ATTEMPTS = 12
KIND_FOR_ORDER_STATUS = {"paid": "refund", "shipped": "return", "completed": "return"}
EXCHANGEABLE = ("shipped", "completed")  # an exchange swaps goods the buyer has
DISPUTE_DAYS = 7  # how long after a rejection the buyer may contest it


class AfterSaleNotFound(NotFound):
    code = "after_sale_not_found"
    message = "No such after-sales request"


class InvalidAfterSalesKind(Conflict):
    code = "invalid_after_sales_kind"


class RefundExceedsOrder(Conflict):
    code = "refund_exceeds_order"


class NothingToRefund(Conflict):
    code = "nothing_to_refund"
    message = "These units cost nothing, so there is no money to refund"


class AfterSalesBusy(Conflict):
    code = "concurrent_update"
    message = "The order's after-sales changed too often meanwhile; try again"


@dataclass(frozen=True)
class ClaimPlan:
    lines: tuple[RequestLine, ...]
    delivery_fee_fen: int
    after: Claims  # the order's claims with this request's added

    @property
    def amount_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines) + self.delivery_fee_fen


# ------------------------------------------------------------------------------------ the user

def request_after_sale(user_id: str, order_id: str, kind: str, reason: str,
                       wanted: dict[str, int] | None) -> AfterSale:
    """Claim `wanted` (sku_id -> units; None: everything unclaimed) of the user's order."""
    for _ in attempts():
        order = get_user_order(user_id, order_id)
        _check_kind(order, kind)
        held = after_sales.get_claims(order_id)
        plan = plan_claim(order, held, wanted, exchange=kind == "exchange")
        now = clock.now()
        request = AfterSale(request_id=after_sales.new_request_id(), order_id=order_id, user_id=user_id, kind=kind,
                            reason=reason, status=REQUESTED, lines=plan.lines,
                            delivery_fee_fen=plan.delivery_fee_fen, amount_fen=plan.amount_fen,
                            created_at=now, updated_at=now,
                            deadline=(after_sales.RESPOND, now + timedelta(hours=get_settings().after_sales_respond_hours)))
        try:
            after_sales.create_request(request, order.status, held, plan.after,
                                       ship_version=order.ship_version if order.status == "paid" else None)
        except after_sales.Contended:
            continue  # another request (or a status change) got there first: plan again
        log.info("after-sales requested", order_id=order_id, request_id=request.request_id,
                 amount_fen=request.amount_fen)
        return request
    raise AfterSalesBusy()


def get_user_request(user_id: str, request_id: str) -> AfterSale:
    """One's own request; someone else's is 404, as if it did not exist."""
    request = after_sales.get_request(request_id)
    if request is None or request.user_id != user_id:
        raise AfterSaleNotFound()
    return request


# -------------------------------------------------------------------------------- the merchant

def get_request(request_id: str) -> AfterSale:
    request = after_sales.get_request(request_id)
    if request is None:
        raise AfterSaleNotFound()
    return request


def list_requests(status: str | None, limit: int, cursor: str | None) -> tuple[list[AfterSale], str | None]:
    secret, scope = get_settings().auth_token_secret, f"admin-after-sales:{status}"
    page, last_key = after_sales.list_requests(status, limit, cursors.decode_cursor(cursor, secret, scope))
    return page, cursors.encode_cursor(last_key, secret, scope)


def refund_status(request: AfterSale) -> str | None:
    refund = payments.get_refund(request.out_refund_no) if request.out_refund_no else None
    return refund.status if refund else None


def approve(request_id: str) -> AfterSale:
    """Record the refund and move the request to refunding in one transaction, then ask WeChat.
    Approving again answers the request unchanged: only the winner of the transition asks."""
    for _ in attempts():
        request = get_request(request_id)
        if request.status in (REFUNDING, REFUNDED):
            return request
        if request.status == REJECTED:
            raise _forbidden(request, "approved")
        if request.status == DISPUTED:
            _reopen(request)  # the merchant gives in: its units are claimed again, then decided as new
            continue
        if request.kind in after_sales.GOODS_COME_BACK and request.received_at is None:
            return _approve_return(request)  # nothing leaves the store before the goods are back
        if request.kind == "exchange":
            return request  # received: the replacement is being (or was) sent
        order = orders.get_order(request.order_id)
        _check_still_refundable(order, request)
        refund = refunds.new_refund(order, order.transaction_id, request.amount_fen, request.reason,
                                    lines=tuple((line.sku_id, line.quantity) for line in request.lines),
                                    out_refund_no=refund_no(request), request_id=request_id)
        try:
            after_sales.start_refund(request, refund, order.status, clock.now())
        except after_sales.Contended:
            continue
        _submit(refund, order)
        return get_request(request_id)
    raise AfterSalesBusy()


def _approve_return(request: AfterSale) -> AfterSale:
    """requested -> approved (again: unchanged): the buyer now sends the goods to RETURN_ADDRESS."""
    if request.status == REQUESTED:
        return_address()  # 409 return_address_not_set before anything changes
        try:
            after_sales.approve_return(request, clock.now())
        except after_sales.Contended:
            pass  # approved (or rejected) meanwhile: answer it as it now is
        log.info("return approved; waiting for the goods", order_id=request.order_id, request_id=request.request_id)
    return get_request(request.request_id)


def configured_return_address() -> str | None:
    """Where returned goods go (RETURN_ADDRESS: the merchant's after-sales address and contact)."""
    return (os.environ.get("RETURN_ADDRESS") or "").strip() or None


def return_address() -> str:
    """The return address, or 409 return_address_not_set."""
    address = configured_return_address()
    if not address:
        raise Conflict("Set RETURN_ADDRESS (where buyers send returned goods) before approving returns",
                       code="return_address_not_set")
    return address


def submit_return_shipment(user_id: str, request_id: str, carrier: str, tracking_no: str) -> AfterSale:
    """The buyer's tracking number for the goods sent back (an approved return whose goods are not
    received yet; again with a corrected number replaces it)."""
    for _ in attempts():
        request = get_user_request(user_id, request_id)
        if request.kind not in after_sales.GOODS_COME_BACK:
            raise InvalidAfterSalesKind("Only a return or an exchange sends goods back", details=[{"kind": request.kind}])
        if request.status != APPROVED or request.received_at is not None:
            raise _forbidden(request, "given a return shipment")
        shipment = {"carrier": carrier, "tracking_no": tracking_no, "submitted_at": clock.to_iso(clock.now())}
        if request.return_shipment and {k: request.return_shipment.get(k) for k in ("carrier", "tracking_no")} == \
                {"carrier": carrier, "tracking_no": tracking_no}:
            return request  # the same number again: unchanged
        review_by = clock.now() + timedelta(hours=get_settings().return_review_hours)
        try:
            after_sales.record_return_shipment(request, shipment, clock.now(), review_by)
        except after_sales.Contended:
            continue
        log.info("return shipped back", request_id=request_id, carrier=carrier)
        return get_request(request_id)
    raise AfterSalesBusy()


def receive_return(request_id: str) -> AfterSale:
    """The merchant has the goods back: restock them (reason `return`) and record the refund in
    one transaction, then ask WeChat. Again: unchanged."""
    for _ in attempts():
        request = get_request(request_id)
        if request.kind not in after_sales.GOODS_COME_BACK:
            raise InvalidAfterSalesKind("Only a return or an exchange has goods to receive",
                                        details=[{"kind": request.kind}])
        if request.received_at is not None:
            return request
        if request.status != APPROVED:
            raise _forbidden(request, "received (approve it first)")
        order = orders.get_order(request.order_id)
        _check_still_refundable(order, request)
        if request.kind == "exchange":
            if _received_for_exchange(request, order):
                return get_request(request_id)
            continue
        refund = refunds.new_refund(order, order.transaction_id, request.amount_fen, request.reason,
                                    lines=tuple((line.sku_id, line.quantity) for line in request.lines),
                                    out_refund_no=refund_no(request), request_id=request_id)
        restocks = [after_sales.Restock(line.sku_id, line.quantity, _available(line.sku_id)) for line in request.lines]
        try:
            after_sales.receive_and_refund(request, refund, restocks, order.status, clock.now())
        except after_sales.Contended:
            continue
        log.info("returned goods received and restocked", order_id=order.order_id, request_id=request_id)
        _submit(refund, order)
        return get_request(request_id)
    raise AfterSalesBusy()


# ------------------------------------------------------------------------------ the SLA clocks

SWEEP_LIMIT = 100
RESPOND_LATE = "after_sales_respond_late"  # alert kinds
REVIEW_LATE = "after_sales_review_late"


def sweep_sla_clocks(limit: int = SWEEP_LIMIT) -> dict[str, int]:
    """Every few minutes: the requests whose SLA clock ran out (found on the sparse index, each
    re-read) are escalated once: an alert for the merchant, and a refund-only request of at most
    AUTO_APPROVE_REFUND_MAX_FEN approved on the merchant's behalf (the buyer is not kept waiting
    for small sums). The escalation is a conditional write on the clock as read, so a sweep racing
    another, or the merchant answering at that moment, escalates nothing twice."""
    now = clock.now()
    outcome: dict[str, int] = {}
    for kind in (after_sales.RESPOND, after_sales.REVIEW):
        for request_id in after_sales.due_request_ids(kind, now, limit):
            result = _escalate_if_due(request_id, kind, now)
            outcome[result] = outcome.get(result, 0) + 1
    return outcome


def _escalate_if_due(request_id: str, kind: str, now) -> str:
    from chalicelib.storage import alerts

    request = after_sales.get_request(request_id)
    if request is None or request.deadline is None or request.deadline[0] != kind or request.deadline[1] > now:
        return "not_due"  # answered, or its clock restarted, since the index was read
    if not after_sales.escalate(request, kind, now):
        return "not_due"
    alerts.record_alert(RESPOND_LATE if kind == after_sales.RESPOND else REVIEW_LATE, now, detail={
        "problem": ("no answer to an after-sales request in time" if kind == after_sales.RESPOND
                    else "returned goods not received or rejected in time"),
        "request_id": request_id, "order_id": request.order_id, "amount_fen": request.amount_fen})
    log.warning("after-sales SLA ran out", request_id=request_id, clock=kind)
    limit = get_settings().auto_approve_refund_max_fen
    if kind == after_sales.RESPOND and request.kind == "refund" and 0 < request.amount_fen <= limit:
        try:
            approve(request_id)
        except (Conflict, NotFound) as refused:  # e.g. the order shipped meanwhile: the merchant decides
            log.warning("late refund not auto-approved", request_id=request_id, reason=refused.code)
            return "escalated"
        log.info("late refund approved automatically", request_id=request_id, amount_fen=request.amount_fen)
        return "auto_approved"
    return "escalated"


def _received_for_exchange(request: AfterSale, order: Order) -> bool:
    """The replacement units leave stock with the receipt (False: raced, read again)."""
    try:
        after_sales.receive_for_exchange(request, order.status, clock.now())
    except after_sales.Contended:
        return False
    except after_sales.ReplacementShort as short:
        raise Conflict("Not enough stock for the replacement: restock, or reject the exchange",
                       code="insufficient_stock", details=[{"sku_id": sku_id} for sku_id in short.sku_ids]) from None
    log.info("exchanged goods received; replacement taken from stock", request_id=request.request_id)
    return True


def ship_replacement(request_id: str, carrier: str, tracking_no: str) -> AfterSale:
    """exchanging -> exchanged with the replacement's tracking (again: unchanged)."""
    for _ in attempts():
        request = get_request(request_id)
        if request.kind != "exchange":
            raise InvalidAfterSalesKind("Only an exchange ships a replacement", details=[{"kind": request.kind}])
        if request.status == EXCHANGED:
            return request
        if request.status != EXCHANGING:
            raise _forbidden(request, "shipped a replacement (receive the goods first)")
        shipment = {"carrier": carrier, "tracking_no": tracking_no, "shipped_at": clock.to_iso(clock.now())}
        try:
            after_sales.ship_replacement(request, shipment, clock.now())
        except after_sales.Contended:
            continue
        log.info("replacement shipped", request_id=request_id, carrier=carrier)
        return get_request(request_id)
    raise AfterSalesBusy()


def dispute(user_id: str, request_id: str, reason: str) -> AfterSale:
    """The buyer contests a rejection, once, within DISPUTE_DAYS: -> disputed, the merchant's
    answer clock running again (again with the same reason: unchanged)."""
    for _ in attempts():
        request = get_user_request(user_id, request_id)
        if request.status == DISPUTED and request.dispute_reason == reason:
            return request
        if request.status != REJECTED or request.dispute_reason is not None:
            raise _forbidden(request, "disputed (only a rejection, once)")
        now = clock.now()
        if now > request.updated_at + timedelta(days=DISPUTE_DAYS):
            raise Conflict(f"A rejection can be contested within {DISPUTE_DAYS} days", code="dispute_window_closed")
        try:
            after_sales.dispute(request, reason, now, now + timedelta(hours=get_settings().after_sales_respond_hours))
        except after_sales.Contended:
            continue
        from chalicelib.storage import alerts

        alerts.record_alert("after_sales_disputed", now, detail={
            "problem": "the buyer contests a rejected after-sales request", "request_id": request_id,
            "order_id": request.order_id, "reason": reason[:100]})
        log.info("after-sales rejection disputed", request_id=request_id)
        return get_request(request_id)
    raise AfterSalesBusy()


def _reopen(request: AfterSale) -> None:
    """disputed -> requested with its units claimed again (409 if another request took them)."""
    order = orders.get_order(request.order_id)
    held = after_sales.get_claims(request.order_id)
    plan = plan_claim(order, held, {line.sku_id: line.quantity for line in request.lines},
                      exchange=request.kind == "exchange")
    try:
        after_sales.reopen_disputed(request, held, plan.after, clock.now())
    except after_sales.Contended:
        pass  # the caller reads again


def _available(sku_id: str) -> int:
    from chalicelib.storage import stock

    try:
        return stock.current_available(sku_id)
    except stock.SkuNotFound:
        raise Conflict("A returned SKU no longer exists; reject the request or recreate the SKU",
                       code="sku_not_found", details=[{"sku_id": sku_id}]) from None


def reject(request_id: str, note: str) -> AfterSale:
    """-> rejected, releasing its units; rejecting again answers it unchanged. A request whose
    refund is under way or done cannot be rejected (409)."""
    for _ in attempts():
        request = get_request(request_id)
        if request.status == REJECTED:
            return request
        if request.status in (REFUNDING, REFUNDED) or request.received_at is not None:
            raise _forbidden(request, "rejected")  # a return's goods are back: its refund is owed
        if request.status == DISPUTED:
            try:
                after_sales.close_dispute(request, note, clock.now())  # its units were released before
            except after_sales.Contended:
                continue
            return get_request(request_id)
        held = after_sales.get_claims(request.order_id)
        try:
            after_sales.reject_request(request, note, held, released(held, request), clock.now())
        except after_sales.Contended:
            continue
        log.info("after-sales rejected", order_id=request.order_id, request_id=request_id)
        return get_request(request_id)
    raise AfterSalesBusy()


def refund_no(request: AfterSale) -> str:
    """AS<request_id> for the first refund; a refund asked again after a failure needs a new one."""
    attempt = request.attempt + 1
    return f"AS{request.request_id}" if attempt == 1 else f"AS{request.request_id}-{attempt}"


def _submit(refund: payments.Refund, order: Order) -> None:
    try:
        outcome = refunds.submit_refund(refund, order)
    except Exception:  # noqa: BLE001
        # The approval and its refund record are committed already; whatever stopped the call
        # (WeChat Pay not configured here, an adapter bug) must not make it look undone. The
        # refund stays `processing` for the retry job, and the error is logged whole.
        log.exception("refund could not be asked for; left to the retry job", out_refund_no=refund.out_refund_no)
        return
    log.info("after-sales refund asked for", order_id=order.order_id, out_refund_no=refund.out_refund_no,
             outcome=outcome)


# ---------------------------------------------------------------------------------- the rules

def _check_kind(order: Order, kind: str) -> None:
    if kind == "exchange" and order.status in EXCHANGEABLE:
        return
    expected = KIND_FOR_ORDER_STATUS.get(order.status)
    if expected is None:
        raise InvalidOrderState(f"An order that is {order.status} has nothing to refund or return",
                                details=[{"status": order.status}])
    if kind != expected:
        hint = ("it has not shipped: ask for a refund" if expected == "refund"
                else "it has shipped: ask to return the goods")
        raise InvalidAfterSalesKind(f"A {kind} does not fit an order that is {order.status}; {hint}",
                                    details=[{"field": "kind", "status": order.status, "expected": expected}])


def _check_still_refundable(order: Order | None, request: AfterSale) -> None:
    """The order may have moved since the request: a refund priced unshipped cannot be paid once
    the goods left (reject it; the user can ask for a return)."""
    if order is None or order.status not in KIND_FOR_ORDER_STATUS or not order.transaction_id:
        status = order.status if order else "missing"
        raise InvalidOrderState(f"The order is {status}: nothing can be refunded", details=[{"status": status}])
    if request.kind == "refund" and order.shipped_at is not None:
        raise InvalidOrderState("The order shipped after this refund was requested; reject it and ask for a return",
                                details=[{"status": order.status, "kind": request.kind}])


def plan_claim(order: Order, held: Claims, wanted: dict[str, int] | None, exchange: bool = False) -> ClaimPlan:
    """The lines, fee and amount of a new request, and the order's claims with it added (an
    exchange claims its units too, so they are never also refunded; its amount is what they are
    worth, and nothing is paid back)."""
    if order.awaiting_group:
        # Its group may still fail, which refunds the whole payment by itself (services/
        # group_settlement.py): a refund of part of it meanwhile would be a second, overlapping
        # refund. The flag is only ever removed (by the payment that fills the group), so a stale
        # read can only refuse, never let through.
        raise Conflict("This order's group has not succeeded yet: if it fails, the payment is refunded "
                       "automatically", code="group_not_succeeded", details=[{"order_id": order.order_id}])
    bought = {line.sku_id: line for line in order.lines}
    # A paid order's units already shipped in a package (services/order_ops.py) are not refundable
    # as unshipped: they come back through a return once the order has shipped.
    shipped = (order.shipped_units or {}) if order.status == "paid" else {}
    left = {sku_id: line.quantity - held.units.get(sku_id, 0) - shipped.get(sku_id, 0)
            for sku_id, line in bought.items()}
    if wanted is None:
        wanted = {sku_id: units for sku_id, units in left.items() if units > 0}
        if not wanted:
            raise RefundExceedsOrder("Every unit of this order is in an after-sales request already")
    _check_wanted(bought, left, wanted)
    lines = tuple(_priced(bought[sku_id], held, units) for sku_id, units in wanted.items())
    units, amounts = dict(held.units), dict(held.amounts)
    for line in lines:
        units[line.sku_id] = units.get(line.sku_id, 0) + line.quantity
        amounts[line.sku_id] = amounts.get(line.sku_id, 0) + line.amount_fen
    whole = all(units.get(sku_id, 0) >= line.quantity for sku_id, line in bought.items())
    fee = order.delivery_fee_fen if whole and order.shipped_at is None and not held.delivery_fee_fen else 0
    plan = ClaimPlan(lines, fee, Claims(order.order_id, held.version, units, amounts, held.delivery_fee_fen + fee))
    if plan.amount_fen <= 0 and not exchange:
        raise NothingToRefund()
    return plan


def _check_wanted(bought: dict[str, OrderLine], left: dict[str, int], wanted: dict[str, int]) -> None:
    unknown = [sku_id for sku_id in wanted if sku_id not in bought]
    if unknown:
        raise BadRequest("These SKUs are not in the order", code="sku_not_in_order",
                         details=[{"field": "lines", "sku_id": sku_id} for sku_id in unknown])
    too_many = [{"field": f"lines.{index}.quantity", "message": f"the order has {bought[sku_id].quantity}"}
                for index, (sku_id, units) in enumerate(wanted.items()) if units > bought[sku_id].quantity]
    if too_many:
        raise ValidationFailed("More units than the order has", details=too_many)
    over = [{"sku_id": sku_id, "requested": units, "refundable": max(0, left[sku_id])}
            for sku_id, units in wanted.items() if units > left[sku_id]]
    if over:
        raise RefundExceedsOrder("Some units are in another after-sales request already (or shipped)",
                                 details=over)


def _priced(line: OrderLine, held: Claims, units: int) -> RequestLine:
    """The line's first claimed+units units are worth refund_for_units(0, claimed+units) (the last
    unit taking the remainder); the live requests carry held.amounts of it already. Without a
    rejection in between this is exactly refund_for_units(claimed, units); after one released a
    claim the two may differ by rounding, so never below zero, and the line never returns more
    than its payable_fen: the request claiming its last unit brings it to exactly that."""
    share = LineShare(sku_id=line.sku_id, quantity=line.quantity, payable_fen=line.payable_fen)
    claimed = held.units.get(line.sku_id, 0)
    amount = refund_for_units(share, 0, claimed + units) - held.amounts.get(line.sku_id, 0)
    return RequestLine(sku_id=line.sku_id, quantity=units, amount_fen=max(0, amount))


def released(held: Claims, request: AfterSale) -> Claims:
    """The order's claims without `request`'s."""
    units, amounts = dict(held.units), dict(held.amounts)
    for line in request.lines:
        units[line.sku_id] = units.get(line.sku_id, 0) - line.quantity
        amounts[line.sku_id] = amounts.get(line.sku_id, 0) - line.amount_fen
    kept = [sku_id for sku_id, count in units.items() if count > 0]
    return Claims(held.order_id, held.version, {sku_id: units[sku_id] for sku_id in kept},
                  {sku_id: amounts[sku_id] for sku_id in kept}, held.delivery_fee_fen - request.delivery_fee_fen)


def _forbidden(request: AfterSale, action: str) -> InvalidOrderState:
    return InvalidOrderState(f"An after-sales request that is {request.status} cannot be {action}",
                             details=[{"status": request.status, "request_id": request.request_id}])


def attempts() -> Iterator[int]:
    """Bounded tries with full-jitter backoff, so requests racing on one order spread out."""
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, min(0.2, 0.01 * 2 ** attempt)))
        yield attempt

