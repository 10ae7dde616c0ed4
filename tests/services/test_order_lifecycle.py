"""After an order is placed: cancel, timeout (timer and sweep), ship, confirm receipt."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import clock, queues
from chalicelib.domain.order_status import InvalidOrderState
from chalicelib.schemas.timers import OrderTimer
from chalicelib.services import order_lifecycle as lifecycle
from chalicelib.storage import transactions
from tests.storage.order_fixtures import pay, counters, make_order, make_product


@pytest.fixture
def unpaid(aws):
    make_product(skus={"s1": 10})
    order = make_order("o1", {"s1": 3})
    transactions.place_order_reserving_stock(order)
    return order


def test_the_user_cancels_an_unpaid_order_and_a_repeat_answers_it_unchanged(unpaid):
    cancelled = lifecycle.cancel_order("u1", "o1")
    assert cancelled.status == "cancelled" and cancelled.cancel_reason == "user"
    again = lifecycle.cancel_order("u1", "o1")
    assert again.status == "cancelled" and again.cancelled_at == cancelled.cancelled_at
    assert counters("s1")["available"] == 10


def test_someone_elses_order_is_not_found(unpaid):
    with pytest.raises(lifecycle.OrderNotFound):
        lifecycle.cancel_order("u2", "o1")
    assert counters("s1")["reserved"] == 3


def test_a_paid_order_cannot_be_cancelled(unpaid):
    pay(unpaid)
    with pytest.raises(InvalidOrderState):
        lifecycle.cancel_order("u1", "o1")


def test_an_order_is_not_closed_before_its_deadline_and_is_closed_once_after(unpaid):
    assert lifecycle.close_if_overdue("o1") == "not_due"
    with clock.frozen_at(unpaid.pay_deadline + timedelta(seconds=1)):
        assert lifecycle.close_if_overdue("o1") == "closed"
        assert lifecycle.close_if_overdue("o1") == "not_pending"
        assert lifecycle.sweep_overdue_orders() == {}
    assert counters("s1") == {"available": 10, "allocated": 0, "reserved": 0, "sold": 0, "stock_in": 10}


def test_the_sweep_closes_overdue_orders_whose_timer_never_came(unpaid):
    with clock.frozen_at(unpaid.pay_deadline + timedelta(minutes=5)):
        assert lifecycle.sweep_overdue_orders() == {"closed": 1}


def test_an_early_timer_message_is_requeued_for_the_rest_of_the_wait(unpaid):
    lifecycle.handle_pay_deadline_timer(OrderTimer(order_id="o1", due_at=unpaid.pay_deadline))
    attributes = queues._client().get_queue_attributes(
        QueueUrl=queues.queue_url(queues.ORDER_TIMERS.name), AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"  # waits out the rest of the deadline
    assert counters("s1")["reserved"] == 3


def test_a_due_timer_message_closes_the_order(unpaid):
    with clock.frozen_at(unpaid.pay_deadline + timedelta(seconds=1)):
        assert lifecycle.handle_pay_deadline_timer(OrderTimer(order_id="o1", due_at=unpaid.pay_deadline)) == "closed"


def test_ship_then_confirm_receipt_completes_the_order(unpaid):
    pay(unpaid)
    shipped = lifecycle.ship_order("o1", "顺丰速运", "SF1234567890")
    assert shipped.status == "shipped" and shipped.shipment["tracking_no"] == "SF1234567890"
    assert lifecycle.ship_order("o1", "顺丰速运", "SF1234567890").shipment == shipped.shipment  # repeat: unchanged
    completed = lifecycle.confirm_receipt("u1", "o1")
    assert completed.status == "completed"
    assert lifecycle.confirm_receipt("u1", "o1").completed_at == completed.completed_at


def test_shipping_an_unpaid_order_is_409(unpaid):
    with pytest.raises(InvalidOrderState):
        lifecycle.ship_order("o1", "顺丰速运", "SF1")


def test_shipped_orders_complete_automatically_after_auto_confirm_days(unpaid):
    pay(unpaid)
    lifecycle.ship_order("o1", "顺丰速运", "SF1")
    assert lifecycle.sweep_auto_confirm() == {}
    with clock.frozen_at(clock.now() + lifecycle.auto_confirm_after() + timedelta(minutes=1)):
        assert lifecycle.sweep_auto_confirm() == {"completed": 1}
    assert lifecycle.get_order("o1").status == "completed"


def _timers_queued() -> list[OrderTimer]:
    from chalicelib.schemas.timers import parse_order_message

    sqs, url = queues._client(), queues.queue_url(queues.ORDER_TIMERS.name)
    bodies = []
    with clock.frozen_at(clock.now()):
        for _ in range(3):
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                           VisibilityTimeout=0).get("Messages", [])
            bodies += [message["Body"] for message in messages]
    return [message for message in map(parse_order_message, set(bodies)) if isinstance(message, OrderTimer)]


def test_placing_an_order_queues_its_deadline_and_a_pay_reminder_five_minutes_before(aws, monkeypatch):
    monkeypatch.setattr(queues, "MAX_DELAY_SECONDS", 0)  # moto holds delayed messages back: deliver at once
    due_at = clock.now() + timedelta(minutes=15)
    lifecycle.schedule_after_placed("o1", due_at, [])
    timers = {timer.kind: timer.due_at for timer in _timers_queued()}
    assert timers == {"pay_deadline": due_at, "pay_reminder": due_at - lifecycle.PAY_REMINDER_BEFORE}


def test_a_short_pay_window_gets_no_reminder(aws, monkeypatch):
    monkeypatch.setattr(queues, "MAX_DELAY_SECONDS", 0)
    lifecycle.schedule_after_placed("o1", clock.now() + timedelta(minutes=5), [])
    assert [timer.kind for timer in _timers_queued()] == ["pay_deadline"]


def test_the_reminder_goes_to_an_unpaid_orders_buyer_only(unpaid, monkeypatch):
    sent = []
    monkeypatch.setattr(lifecycle.notifications, "notify_order_event",
                        lambda order, kind, now, **_: sent.append((order.order_id, kind)) or "queued")
    reminder = OrderTimer(order_id="o1", kind="pay_reminder", due_at=unpaid.pay_deadline - timedelta(minutes=5))
    assert lifecycle.handle_pay_deadline_timer(reminder) == "requeued"  # SQS woke it early
    with clock.frozen_at(reminder.due_at + timedelta(seconds=1)):
        assert lifecycle.handle_pay_deadline_timer(reminder) == "queued"
        pay(unpaid)
        assert lifecycle.handle_pay_deadline_timer(reminder) == "not_pending"
    assert sent == [("o1", "pay_reminder")]
