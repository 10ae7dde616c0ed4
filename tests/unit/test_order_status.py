from __future__ import annotations

import pytest

from chalicelib.domain.order_status import (TRANSITIONS, InvalidOrderState, OrderEvent, OrderStatus,
                                            already_applied, next_status)

S, E = OrderStatus, OrderEvent


def test_the_happy_path_is_pending_paid_shipped_completed():
    status = S.PENDING_PAYMENT
    for event in (E.PAY, E.SHIP, E.CONFIRM_RECEIPT):
        status = next_status(status, event)
    assert status is S.COMPLETED


@pytest.mark.parametrize("status, event", [(S.PAID, E.CANCEL), (S.CANCELLED, E.PAY), (S.PENDING_PAYMENT, E.SHIP),
                                           (S.COMPLETED, E.CANCEL), (S.REFUNDED, E.SHIP)])
def test_forbidden_transitions_are_409_invalid_order_state(status, event):
    with pytest.raises(InvalidOrderState) as error:
        next_status(status, event)
    assert error.value.status == 409 and error.value.code == "invalid_order_state"


def test_a_repeated_action_is_recognised_as_already_applied():
    assert already_applied(S.CANCELLED, E.CANCEL)  # cancel a cancelled order: 200, nothing changes
    assert already_applied(S.CANCELLED, E.TIME_OUT)
    assert already_applied(S.COMPLETED, E.CONFIRM_RECEIPT)
    assert not already_applied(S.PAID, E.CANCEL)


def test_no_transition_leaves_a_final_state_except_refunds_of_delivered_goods():
    finals = {S.CANCELLED, S.REFUNDED}
    assert not [key for key in TRANSITIONS if key[0] in finals]
