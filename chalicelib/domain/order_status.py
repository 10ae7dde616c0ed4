"""The order state machine: the one table of allowed transitions.

Storage applies a transition as a conditional update (`status == from`), so two events racing
on one order (a timeout and a payment, say) cannot both win.
"""
from __future__ import annotations

from enum import Enum

from chalicelib.errors import Conflict


class OrderStatus(str, Enum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class OrderEvent(str, Enum):
    PAY = "pay"
    CANCEL = "cancel"  # by the user, before payment
    TIME_OUT = "time_out"  # the payment deadline passed
    SHIP = "ship"
    CONFIRM_RECEIPT = "confirm_receipt"  # by the user, or automatically after AUTO_CONFIRM_DAYS
    REFUND_FULLY = "refund_fully"


S, E = OrderStatus, OrderEvent
TRANSITIONS: dict[tuple[OrderStatus, OrderEvent], OrderStatus] = {
    (S.PENDING_PAYMENT, E.PAY): S.PAID,
    (S.PENDING_PAYMENT, E.CANCEL): S.CANCELLED,
    (S.PENDING_PAYMENT, E.TIME_OUT): S.CANCELLED,
    (S.PAID, E.SHIP): S.SHIPPED,
    (S.PAID, E.REFUND_FULLY): S.REFUNDED,
    (S.SHIPPED, E.CONFIRM_RECEIPT): S.COMPLETED,
    (S.SHIPPED, E.REFUND_FULLY): S.REFUNDED,
    (S.COMPLETED, E.REFUND_FULLY): S.REFUNDED,
}

# The state an event leads to, so a repeat of an action that already happened can be
# answered as success without changing anything (cancel a cancelled order: 200).
RESULT_OF: dict[OrderEvent, OrderStatus] = {event: target for (_, event), target in TRANSITIONS.items()}


class InvalidOrderState(Conflict):
    code = "invalid_order_state"


def next_status(current: OrderStatus, event: OrderEvent) -> OrderStatus:
    """The status after `event`, or 409 invalid_order_state when the state forbids it."""
    try:
        return TRANSITIONS[(current, event)]
    except KeyError:
        raise InvalidOrderState(f"An order that is {current.value} cannot {event.value.replace('_', ' ')}",
                                details=[{"status": current.value, "event": event.value}]) from None


def already_applied(current: OrderStatus, event: OrderEvent) -> bool:
    """True when the order is already where `event` would take it (a repeated action)."""
    return RESULT_OF.get(event) == current
