"""A refund the merchant starts (e.g. a line out of stock after payment): an after-sales request
of kind `refund` made on the buyer's order and approved in the same call, so it goes through the
one refund machinery (services/after_sales.py, services/refunds.py): its units are claimed like
a buyer's (two requests can never hold one unit: a merchant refund racing a buyer's refund of the
same line is refused or re-planned, never paid twice), its amount follows each line's payable_fen,
the order's refunded total, its coupons, points and the restock of the unshipped units move in
the refund's completion as for any refund.

Idempotent by the client's request_id: the after-sales request's id is `m<request_id>`, created on
condition it does not exist; the same request_id again finds it and approves it again (a no-op
once approved), so a call that died between the two steps is finished by its retry. Only a paid
order (nothing shipped yet, or the units still unshipped of a split shipment) can be refunded this
way: shipped goods come back through a return.
"""
from __future__ import annotations

from chalicelib import audit_context, clock
from chalicelib.domain.order_status import InvalidOrderState
from chalicelib.errors import Conflict
from chalicelib.log import get_logger
from chalicelib.services import after_sales
from chalicelib.services.order_reads import get_order
from chalicelib.storage import after_sales as store
from chalicelib.storage.after_sales import REQUESTED, AfterSale

log = get_logger(__name__)


def after_sale_id(request_id: str) -> str:
    return f"m{request_id}"


def refund_lines(order_id: str, request_id: str, wanted: dict[str, int], reason: str, by: str) -> AfterSale:
    as_id = after_sale_id(request_id)
    existing = store.get_request(as_id)
    if existing is None:
        existing = _create(order_id, as_id, wanted, f"{reason} (merchant {by})"[:200])
        audit_context.note(f"order:{order_id}", after={"after_sale_id": as_id, "amount_fen": existing.amount_fen,
                                                       "lines": {line.sku_id: line.quantity for line in existing.lines},
                                                       "reason": reason})
    elif existing.order_id != order_id or {line.sku_id: line.quantity for line in existing.lines} != wanted:
        raise Conflict("This request_id was used for another refund", code="request_id_reused",
                       details=[{"field": "request_id", "order_id": existing.order_id}])
    return after_sales.approve(as_id)  # again: unchanged


def _create(order_id: str, as_id: str, wanted: dict[str, int], reason: str) -> AfterSale:
    for _ in after_sales.attempts():
        order = get_order(order_id)
        if order.status != "paid" or not order.transaction_id:
            raise InvalidOrderState(f"An order that is {order.status} cannot be refunded by the merchant here"
                                    + ("; its shipped goods come back through a return" if order.status in
                                       ("shipped", "completed") else ""), details=[{"status": order.status}])
        held = store.get_claims(order_id)
        plan = after_sales.plan_claim(order, held, wanted)
        now = clock.now()
        request = AfterSale(request_id=as_id, order_id=order_id, user_id=order.user_id, kind="refund", reason=reason,
                            status=REQUESTED, lines=plan.lines, delivery_fee_fen=plan.delivery_fee_fen,
                            amount_fen=plan.amount_fen, created_at=now, updated_at=now)
        try:
            store.create_request(request, order.status, held, plan.after, ship_version=order.ship_version)
        except store.Contended:
            raced = store.get_request(as_id)
            if raced is not None:  # the same request_id, sent twice at once: the other call made it
                return raced
            continue
        log.info("merchant refund requested", order_id=order_id, request_id=as_id, amount_fen=request.amount_fen)
        return request
    raise after_sales.AfterSalesBusy()
