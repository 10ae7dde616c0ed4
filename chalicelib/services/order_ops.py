"""The merchant's order operations (issue 16): batch ship, split shipments, address changes,
remarks, and merchant-started refunds (services/merchant_refunds.py).

Split shipments: each package names lines and units; a unit is shippable while it is bought,
not shipped and not held by an after-sales request (storage/order_ops.py conditions the write on
the order's ship_version and on the claims' version, so two packages racing for a line, or a
package racing a refund request, never over-ship). The package shipping the last unit makes the
order `shipped` in the same write; WeChat's shipping-info upload is queued then, once per order,
with that package's tracking (services/shipping_info.py). The whole-order ship on an order with
packages ships the rest as one more package.
"""
from __future__ import annotations

from typing import Any

from chalicelib import audit_context, clock
from chalicelib.domain.order_status import InvalidOrderState
from chalicelib.errors import AppError, BadRequest, Conflict
from chalicelib.log import get_logger
from chalicelib.services import after_sales, notifications, order_lifecycle, shipping_info
from chalicelib.services.order_reads import get_order
from chalicelib.storage import after_sales as claims_store
from chalicelib.storage import order_ops as store
from chalicelib.storage import orders
from chalicelib.storage.base import ConditionFailed, is_transient

log = get_logger(__name__)


class OrderBusy(Conflict):
    code = "concurrent_update"
    message = "The order changed too often meanwhile; try again"


def order_target(order_id: str) -> str:
    return f"order:{order_id}"


# ------------------------------------------------------------------------------ batch ship

def batch_ship(shipments: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Ship each (order_id, carrier, tracking_no) through the one ship path, each on its own: a
    refusal or an error is that order's result, never the others'. Shipping an order again with
    the tracking number it shipped with answers ok, changing nothing."""
    return [_ship_one(order_id, carrier, tracking_no) for order_id, carrier, tracking_no in shipments]


def _ship_one(order_id: str, carrier: str, tracking_no: str) -> dict[str, Any]:
    try:
        before = get_order(order_id)
        order = ship_whole(order_id, carrier, tracking_no)
    except AppError as refused:
        return {"order_id": order_id, "ok": False, "code": refused.code, "message": refused.message}
    except Exception as error:  # noqa: BLE001 - one order's failure never stops the batch
        if not is_transient(error):
            log.exception("batch ship: order failed", order_id=order_id)
        return {"order_id": order_id, "ok": False, "code": "service_unavailable" if is_transient(error)
                else "internal_error", "message": "Not shipped; try this order again"}
    shipped_with = (order.shipment or {}).get("tracking_no")
    if order.status != "shipped" or shipped_with != tracking_no:
        return {"order_id": order_id, "ok": False, "status": order.status, "code": "already_shipped",
                "message": f"The order is {order.status} (tracking {shipped_with or '-'})"}
    if before.status != "shipped":
        audit_context.note(order_target(order_id), before={"status": before.status},
                           after={"status": order.status, "carrier": carrier, "tracking_no": tracking_no},
                           action="POST /v1/admin/orders/batch-ship")
    return {"order_id": order_id, "ok": True, "status": order.status}


def ship_whole(order_id: str, carrier: str, tracking_no: str) -> orders.Order:
    """The whole-order ship: as before for an order without packages; the rest as one more
    package for an order that has some."""
    order = get_order(order_id)
    if order.status == "paid" and order.shipments:
        rest = {line.sku_id: line.quantity - (order.shipped_units or {}).get(line.sku_id, 0) for line in order.lines}
        held = claims_store.get_claims(order_id)
        wanted = {sku_id: units - held.units.get(sku_id, 0) for sku_id, units in rest.items()}
        wanted = {sku_id: units for sku_id, units in wanted.items() if units > 0}
        if not wanted:
            raise Conflict("Every unit not yet shipped is held by a refund request: decide it first",
                           code="nothing_to_ship", details=[{"order_id": order_id}])
        return ship_package(order_id, wanted, carrier, tracking_no, by=None)
    return order_lifecycle.ship_order(order_id, carrier, tracking_no)


# ------------------------------------------------------------------------------ split shipments

def ship_package(order_id: str, wanted: dict[str, int], carrier: str, tracking_no: str,
                 by: str | None) -> orders.Order:
    """Ship `wanted` (sku_id -> units) of a paid order as one package. Again with the same
    tracking number and lines: unchanged."""
    for _ in after_sales.attempts():
        order = get_order(order_id)
        replay = _same_package(order, wanted, carrier, tracking_no)
        if replay is not None:
            return order
        if order.status != "paid":
            raise InvalidOrderState(f"An order that is {order.status} cannot ship a package",
                                    details=[{"status": order.status}])
        order_lifecycle.check_group_succeeded(order)  # 409 group_not_succeeded (the write's condition too)
        shipping_info.check_carrier(order, carrier)
        held = claims_store.get_claims(order_id)
        units_after, complete = _plan(order, held, wanted)
        if complete and not order.refunds_in_flight and _undecided_refund_requests(order, held):
            raise Conflict("A refund request holds the order's other units: approve or reject it before the last "
                           "package (once shipped, an unshipped refund can no longer be approved)",
                           code="refund_request_open", details=[{"order_id": order_id}])
        now = clock.now()
        package = {"shipment_id": f"{order.ship_version + 1}", "carrier": carrier, "tracking_no": tracking_no,
                   "lines": [{"sku_id": sku_id, "quantity": units} for sku_id, units in wanted.items()],
                   "shipped_at": clock.to_iso(now), "by": by or ""}
        timer = (orders.TIMER_AUTO_CONFIRM, now + order_lifecycle.auto_confirm_after())
        try:
            shipped = store.ship_package(order, held.version, package, units_after, complete, now, timer)
        except store.RefundInFlight as in_flight:
            raise order_lifecycle.refund_in_progress(in_flight.args[0]) from None
        except store.Contended:
            continue
        log.info("package shipped", order_id=order_id, complete=complete, tracking_no=tracking_no)
        audit_context.note(order_target(order_id), before={"status": order.status,
                                                           "shipped_units": order.shipped_units or {}},
                           after={"status": shipped.status, "shipped_units": shipped.shipped_units, "package": package})
        if complete:
            notifications.notify_order_event(shipped, "shipped", now)  # never raises
            return shipping_info.after_shipped(shipped)  # the one upload of the order, queued; never raises
        return shipped
    raise OrderBusy()


def _same_package(order: orders.Order, wanted: dict[str, int], carrier: str, tracking_no: str) -> bool | None:
    """True if this package was shipped before (a replay); 409 if its tracking number was used
    for another package of the order; None if it is new."""
    for package in order.shipments:
        if package.get("tracking_no") != tracking_no:
            continue
        lines = {line["sku_id"]: int(line["quantity"]) for line in package.get("lines", [])}
        if lines == wanted and package.get("carrier") == carrier:
            return True
        raise Conflict("This tracking number was used for another package of this order", code="tracking_no_reused",
                       details=[{"field": "tracking_no", "shipment_id": package.get("shipment_id")}])
    return None


def _undecided_refund_requests(order: orders.Order, held: claims_store.Claims) -> bool:
    """Whether live requests claim more than the order has had refunded: a request still waiting
    for the merchant (an approved one in flight is refused by the write itself). Read from the
    items (the package's write is conditioned on the claims version as read); a refund completing
    meanwhile can only make this refuse once more, never let through."""
    return sum(held.amounts.values()) + held.delivery_fee_fen > order.refunded_fen


def _plan(order: orders.Order, held: claims_store.Claims, wanted: dict[str, int]) -> tuple[dict[str, int], bool]:
    """The order's shipped units after the package, and whether every unit is then shipped (or
    held by a refund request). 400 for SKUs not in the order; 409 for more than is shippable."""
    bought = {line.sku_id: line.quantity for line in order.lines}
    shipped = dict(order.shipped_units or {})
    unknown = [sku_id for sku_id in wanted if sku_id not in bought]
    if unknown:
        raise BadRequest("These SKUs are not in the order", code="sku_not_in_order",
                         details=[{"field": "lines", "sku_id": sku_id} for sku_id in unknown])
    over = [{"sku_id": sku_id, "requested": units,
             "shippable": bought[sku_id] - shipped.get(sku_id, 0) - held.units.get(sku_id, 0)}
            for sku_id, units in wanted.items()
            if units > bought[sku_id] - shipped.get(sku_id, 0) - held.units.get(sku_id, 0)]
    if over:
        raise Conflict("More units than are left to ship (bought, minus shipped, minus those in a refund request)",
                       code="exceeds_shippable", details=over)
    after = {**shipped, **{sku_id: shipped.get(sku_id, 0) + units for sku_id, units in wanted.items()}}
    complete = all(after.get(sku_id, 0) + held.units.get(sku_id, 0) >= units for sku_id, units in bought.items())
    return after, complete


# ------------------------------------------------------------------------------ address, remarks

ADDRESS_FIELDS = ("name", "phone", "province", "city", "district", "detail", "postal_code")


def change_address(order_id: str, new: dict[str, Any], reason: str) -> orders.Order:
    """Before shipping only (409 already_shipped): conditioned on the status and on the address
    as read, audited with the address before and after."""
    for _ in after_sales.attempts():
        order = get_order(order_id)
        if order.status not in store.NOT_SHIPPED or order.shipments:
            raise Conflict(f"The order is {order.status}{' (partly shipped)' if order.shipments else ''}: its address "
                           "can no longer change", code="already_shipped", details=[{"status": order.status}])
        if order.delivery_method != "express" or order.address is None:
            raise Conflict("Only an express order has a delivery address", code="no_delivery_address",
                           details=[{"delivery_method": order.delivery_method}])
        address = {key: value for key, value in new.items() if key in ADDRESS_FIELDS and value is not None}
        if {key: order.address.get(key) for key in ADDRESS_FIELDS if order.address.get(key) is not None} == address:
            return order  # the same address again: unchanged
        try:
            changed = store.change_address(order, address, clock.now())
        except ConditionFailed:
            continue
        audit_context.note(order_target(order_id), before={"address": order.address},
                           after={"address": changed.address, "reason": reason})
        log.info("order address changed by the merchant", order_id=order_id)
        return changed
    raise OrderBusy()


def add_remark(order_id: str, text: str, by: str) -> orders.Order:
    for _ in after_sales.attempts():
        order = get_order(order_id)
        if len(order.remarks) >= store.MAX_REMARKS:
            raise Conflict(f"An order keeps at most {store.MAX_REMARKS} remarks", code="too_many_remarks")
        remark = {"at": clock.to_iso(clock.now()), "by": by, "text": text}
        try:
            changed = store.add_remark(order_id, remark) if order.remarks else store.start_remarks(order_id, remark)
        except ConditionFailed:
            continue
        audit_context.note(order_target(order_id), after={"remark": remark})
        return changed
    raise OrderBusy()
