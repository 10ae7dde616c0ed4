"""The real stream path on AWS's DynamoDB Local: orders placed, paid and cancelled through the
services, tracking events stored, the local worker reading the tables' streams into the app's
`on_dynamodb_record` handlers, and the reports moving. Redelivery and two consumers racing on
the same records count nothing twice (only the real engine makes the transactions atomic)."""
from __future__ import annotations

import threading
from datetime import date

import pytest

from chalicelib import clock
from chalicelib.schemas.events import EventBatchBody
from chalicelib.services import events, order_lifecycle, payments, reports
from chalicelib.storage import transactions
from chalicelib.wechat.pay_types import Transaction
from local.worker import Worker
from tests.conftest import TEST_ENV, reset_process_caches
from tests.storage.order_fixtures import make_order, make_product

pytestmark = pytest.mark.dynamodb_local


@pytest.fixture
def store(dynamodb_local, monkeypatch):
    monkeypatch.setenv("WECHAT_PAY_MCH_ID", "1900000109")
    reset_process_caches()
    make_product(skus={"s1": 10})


def _worker() -> Worker:
    """A worker reading only what happens from now on (the engine is shared by the session)."""
    from app import app

    worker = Worker(app, stream_start="LATEST")
    worker.drain_streams()
    return worker


def _pay(order) -> str:
    return payments.apply_transaction(Transaction(
        out_trade_no=order.out_trade_no, transaction_id=f"4200{order.order_id}", trade_state="SUCCESS",
        amount_total_fen=order.payable_fen, payer_openid="o", appid=TEST_ENV["WECHAT_APPID"], mchid="1900000109",
        success_time=clock.now()), "v3")


def _today() -> date:
    return clock.now().astimezone(clock.CHINA_TZ).date()


def _track(user_id: str, ids: list[str]) -> None:
    at = clock.now().isoformat()
    events.record_events(user_id, EventBatchBody.model_validate(
        {"events": [{"event_id": event_id, "type": "product_view", "at": at, "product_id": "p1"} for event_id in ids]}))


def test_placing_paying_and_cancelling_move_the_reports_through_the_streams(store):
    worker = _worker()
    paid_order, cancelled_order = make_order("o1", {"s1": 2}, user_id="u1"), make_order("o2", {"s1": 1}, user_id="u2")
    for order in (paid_order, cancelled_order):
        transactions.place_order_reserving_stock(order)
    assert _pay(paid_order) == "paid"
    order_lifecycle.cancel_order("u2", "o2")
    _track("u1", ["view-0001", "view-0002"])
    _track("u1", ["view-0001", "view-0002", "view-0003"])  # a resent batch: one new event

    deliveries = worker.drain_streams()
    assert deliveries and all(d.ok for d in deliveries)
    assert {d.source for d in deliveries} == {"count_order_changes", "count_tracking_events"}
    today = _today()
    [sales] = reports.sales(today, today).items
    assert (sales.orders, sales.paid_orders, sales.gmv_fen, sales.aov_fen) == (2, 1, 2000, 2000)
    [funnel] = reports.funnel(today, today).items
    assert (funnel.product_views, funnel.stages.click, funnel.stages.order, funnel.stages.paid) == (3, 1, 2, 1)
    [product] = reports.products(today, today, "paid_fen", 10).items
    assert (product.product_id, product.views, product.ordered_units, product.paid_units) == ("p1", 3, 3, 2)
    assert worker.drain_streams() == []  # nothing new


def test_a_batch_refused_after_its_writes_is_read_again_and_counted_once(store):
    worker = _worker()
    orders_stream = next(s for s in worker.streams if s.name == "count_order_changes")
    real, calls = orders_stream.handler, []

    def crash_after_writing(event, context):
        calls.append(len(event["Records"]))
        real(event, context)
        if len(calls) == 1:
            raise ConnectionError("the Lambda timed out after its writes")

    orders_stream.handler = crash_after_writing
    order = make_order("o3", {"s1": 3}, user_id="u3")
    transactions.place_order_reserving_stock(order)
    _pay(order)
    deliveries = worker.drain_streams()  # stops at the refused batch
    deliveries += worker.drain_streams()  # the next poll reads it again
    assert [d.ok for d in deliveries if d.source == "count_order_changes"][:2] == [False, True]
    assert len(calls) >= 2
    [sales] = reports.sales(_today(), _today()).items
    assert (sales.orders, sales.paid_orders, sales.gmv_fen) == (1, 1, 3000)


def test_two_consumers_racing_on_the_same_records_count_them_once(store):
    workers = [_worker(), _worker()]
    for n in range(6):
        order = make_order(f"r{n}", {"s1": 1}, user_id=f"ru{n}")
        transactions.place_order_reserving_stock(order)
        _pay(order)
    for n in range(4):
        _track(f"tu{n}", [f"race-{n}-{k:03d}" for k in range(20)])
    barrier = threading.Barrier(2)
    results: list[list] = [[], []]

    def run(index: int) -> None:
        barrier.wait()
        results[index] = workers[index].drain_streams()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    failed = [d for delivered in results for d in delivered if not d.ok]
    for worker in workers:  # a batch refused for contention is delivered again, as Lambda would
        worker.drain_streams()
    [sales] = reports.sales(_today(), _today()).items
    assert (sales.orders, sales.paid_orders, sales.gmv_fen) == (6, 6, 6000), failed
    [funnel] = reports.funnel(_today(), _today()).items
    assert (funnel.product_views, funnel.stages.exposure, funnel.stages.paid) == (80, 4, 6)
