"""The merchant's writes on an order besides its status machine: split shipments, the delivery
address before shipping, remarks. Each is one conditional write (a shipment: one TransactWrite).

A split shipment adds a package to the order: the units of each line it carries go into the
order's `shipped_units`, the package into `shipments`, and `ship_version` goes up by one, on
condition that the order is still `paid` with the `ship_version` read, AND that the order's
after-sales claims (storage/after_sales.py) are still at the version read: a unit a buyer's (or the
merchant's) refund request holds is never shipped, and a request made meanwhile makes the
shipment read again (the request, for its part, is conditioned on `ship_version`). The package
that ships the last unit moves the order paid -> shipped in the same write (then also on
condition that no refund of unshipped units is in flight, as the whole-order ship).
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import size
from pynamodb.transactions import TransactWrite

from chalicelib.storage.after_sales import ClaimsRecord
from chalicelib.storage.base import ConditionFailed, condition_failure_as, response_code
from chalicelib.storage.orders import Order, OrderRecord, from_record, get_order

MAX_REMARKS = 100
NOT_SHIPPED = ("pending_payment", "paid")


class Contended(Exception):
    """The order or its claims moved since they were read: read again."""


class RefundInFlight(Exception):
    """The last package cannot make the order shipped while a refund of unshipped units runs."""


def _version_is(attribute, version: int):
    return attribute == version if version else attribute.does_not_exist()


def ship_package(order: Order, claims_version: int, package: dict[str, Any], units_after: dict[str, int],
                 complete: bool, now: datetime, timer: tuple[str, datetime]) -> Order:
    """Add the package (and when `complete`, paid -> shipped). Raises Contended or RefundInFlight."""
    actions = [OrderRecord.shipped_units.set(units_after), OrderRecord.ship_version.set(order.ship_version + 1),
               OrderRecord.shipments.set(OrderRecord.shipments.append([package])) if order.shipments
               else OrderRecord.shipments.set([package])]
    condition = (OrderRecord.status == "paid") & _version_is(OrderRecord.ship_version, order.ship_version)
    condition &= OrderRecord.awaiting_group.does_not_exist()  # a group order ships once its group succeeded
    if complete:
        shipment = {key: package[key] for key in ("carrier", "tracking_no", "shipped_at")}
        actions += [OrderRecord.status.set("shipped"), OrderRecord.shipped_at.set(now),
                    OrderRecord.shipment.set(shipment), OrderRecord.timer_kind.set(timer[0]),
                    OrderRecord.timer_at.set(timer[1])]
        condition &= OrderRecord.refunds_in_flight.does_not_exist()
    try:
        with TransactWrite(connection=OrderRecord._get_connection().connection,
                           client_request_token=str(uuid.uuid4())) as transaction:
            transaction.update(OrderRecord(order.order_id), actions=actions, condition=condition)
            transaction.condition_check(ClaimsRecord, order.order_id,
                                        condition=_version_is(ClaimsRecord.version, claims_version))
    except TransactWriteError as error:
        reasons = {reason.code for reason in error.cancellation_reasons or [] if reason is not None}
        if response_code(error) == "TransactionCanceledException" and reasons <= {"ConditionalCheckFailed",
                                                                                   "TransactionConflict", "None"}:
            current = get_order(order.order_id)
            if (complete and current is not None and current.status == "paid" and current.refunds_in_flight
                    and current.ship_version == order.ship_version):
                raise RefundInFlight(sorted(current.refunds_in_flight)) from None
            raise Contended() from None
        raise
    return get_order(order.order_id)


def change_address(order: Order, address: dict[str, Any], now: datetime) -> Order:
    """Replace the delivery address: the order not shipped (no package either) and its address
    as read (its address_version). Raises ConditionFailed."""
    record = OrderRecord(order.order_id)
    with condition_failure_as(ConditionFailed):
        record.update(actions=[OrderRecord.address.set(address),
                               OrderRecord.address_version.set(order.address_version + 1)],
                      condition=OrderRecord.status.is_in(*NOT_SHIPPED) & OrderRecord.shipments.does_not_exist()
                      & _version_is(OrderRecord.address_version, order.address_version))
    return from_record(record)


def add_remark(order_id: str, remark: dict[str, Any]) -> Order:
    """Append a merchant remark (condition: the order exists and has fewer than MAX_REMARKS)."""
    record = OrderRecord(order_id)
    with condition_failure_as(ConditionFailed):
        record.update(actions=[OrderRecord.remarks.set(OrderRecord.remarks.append([remark]))],
                      condition=OrderRecord.order_id.exists() & (size(OrderRecord.remarks) < MAX_REMARKS))
    return from_record(record)


def start_remarks(order_id: str, remark: dict[str, Any]) -> Order:
    """The first remark of an order (condition: it has none yet)."""
    record = OrderRecord(order_id)
    with condition_failure_as(ConditionFailed):
        record.update(actions=[OrderRecord.remarks.set([remark])],
                      condition=OrderRecord.order_id.exists() & OrderRecord.remarks.does_not_exist())
    return from_record(record)
