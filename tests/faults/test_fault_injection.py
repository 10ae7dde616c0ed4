"""Failures of DynamoDB in the middle of the money and stock paths (on DynamoDB Local).

Each scenario runs with faults injected into a share of all DynamoDB calls (see injector.py);
the "client" retries whatever failed, as a mini-program or WeChat would. Afterwards the
invariants must hold: stock conserved per SKU, one order per checkout_token, one payment per
transaction_id, refunds <= payments, and nothing lost.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.errors import AppError
from chalicelib.schemas.orders import PlaceOrderBody
from chalicelib.services import checkout, order_lifecycle, payments
from chalicelib.storage import orders, schema, stores, transactions
from chalicelib.storage import payments as payment_store
from chalicelib.storage.base import is_transient
from chalicelib.storage.orders import OrderRecord
from chalicelib.wechat.pay_types import Transaction
from tests.conftest import TEST_ENV, reset_process_caches
from tests.faults.injector import DynamoFaults
from tests.storage.order_fixtures import counters, make_product, recorded_payments

pytestmark = pytest.mark.dynamodb_local
MAX_TRIES = 40


@pytest.fixture
def shop(dynamodb_local, monkeypatch):
    monkeypatch.setenv("WECHAT_PAY_MCH_ID", "1900000109")
    reset_process_caches()
    make_product("p1", skus={"s1": 30, "s2": 30})
    stores.create_store("st1", name="店", address="上海", hours="9-21")


def retried(action):
    """Call `action` until it stops failing transiently (as a client retrying a 503 would)."""
    for _ in range(MAX_TRIES):
        try:
            return action()
        except AppError:
            raise
        except Exception as error:  # noqa: BLE001
            if not is_transient(error):
                raise
    raise AssertionError("still failing after retries")


def _body(token: str) -> PlaceOrderBody:
    return PlaceOrderBody.model_validate({
        "items": [{"sku_id": "s1", "quantity": 2}, {"sku_id": "s2", "quantity": 1}],
        "delivery_method": "pickup", "store_id": "st1", "checkout_token": token})


def _place(n: int) -> orders.Order:
    return retried(lambda: checkout.place_order(f"user-{n}", _body(f"fault-token-{n:03d}")))[0]


def _assert_stock_conserved() -> None:
    for sku in ("s1", "s2"):
        counters(sku)  # asserts stock_in == available + allocated + reserved + sold


def _success(order: orders.Order) -> Transaction:
    return Transaction(out_trade_no=order.out_trade_no, transaction_id=f"42{order.order_id}", trade_state="SUCCESS",
                       amount_total_fen=order.payable_fen, payer_openid="o", appid=TEST_ENV["WECHAT_APPID"],
                       mchid="1900000109", success_time=clock.now())


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_placing_orders_under_faults_makes_one_order_per_token_and_conserves_stock(shop, rate):
    with DynamoFaults(rate, seed=int(rate * 100)).attach(schema.ALL_MODELS) as faults:
        placed = [_place(n) for n in range(8)]
        placed += [_place(n) for n in range(8)]  # every token replayed: same orders
    assert faults.injected, "faults were injected"
    assert len({order.order_id for order in placed}) == 8 and OrderRecord.count() == 8
    assert counters("s1")["reserved"] == 16 and counters("s2")["reserved"] == 8
    _assert_stock_conserved()


def test_pay_notifies_under_faults_pay_each_order_once(shop):
    placed = [_place(n) for n in range(6)]
    with DynamoFaults(0.3, seed=11).attach(schema.ALL_MODELS):
        for order in placed:
            for _ in range(3):  # WeChat repeats the notify, and we may fail any of them
                retried(lambda: payments.apply_transaction(_success(order), "v3"))
    for order in placed:
        assert orders.get_order(order.order_id).status == "paid"
        assert len(recorded_payments(order.order_id)) == 1
    assert counters("s1")["sold"] == 12 and counters("s1")["reserved"] == 0
    _assert_stock_conserved()


def test_timeout_sweeps_under_faults_release_each_reservation_once(shop):
    placed = [_place(n) for n in range(6)]
    with clock.frozen_at(clock.now() + timedelta(hours=1)):
        with DynamoFaults(0.3, seed=13).attach(schema.ALL_MODELS):
            for _ in range(MAX_TRIES):
                try:
                    order_lifecycle.sweep_overdue_orders()
                except Exception as error:  # noqa: BLE001 - a failed sweep run; the next one continues
                    assert is_transient(error)
                if all(retried(lambda: orders.get_order(o.order_id)).status == "cancelled" for o in placed):
                    break
    assert all(orders.get_order(o.order_id).status == "cancelled" for o in placed)
    assert counters("s1") == {"available": 30, "allocated": 0, "reserved": 0, "sold": 0, "stock_in": 30}


def test_a_crash_after_the_order_is_written_is_healed_by_the_clients_retry(shop, monkeypatch):
    real = transactions.place_order_reserving_stock
    crashed = []

    def crash_once_after_commit(order, **parts):
        real(order, **parts)
        if not crashed:
            crashed.append(order.order_id)
            raise RuntimeError("Lambda died after the transaction committed")

    monkeypatch.setattr(transactions, "place_order_reserving_stock", crash_once_after_commit)
    with pytest.raises(RuntimeError):
        checkout.place_order("user-1", _body("crash-token-1"))
    order, created = checkout.place_order("user-1", _body("crash-token-1"))
    assert created is False and order.order_id == crashed[0]
    assert OrderRecord.count() == 1 and counters("s1")["reserved"] == 2
    # Its pay-deadline timer was never queued; the sweep still closes it in time.
    with clock.frozen_at(order.pay_deadline + timedelta(seconds=1)):
        assert order_lifecycle.sweep_overdue_orders() == {"closed": 1}
    _assert_stock_conserved()


def test_refunds_never_exceed_payments_under_faults(shop):
    from chalicelib.services import refunds

    order = _place(0)
    payments.apply_transaction(_success(order), "v3")
    order = orders.get_order(order.order_id)
    refund = refunds.new_refund(order, order.transaction_id, order.payable_fen, "test",
                                lines=(("s1", 2), ("s2", 1)), out_refund_no="RF-fault-1")
    payment_store.create_refund(refund)
    with DynamoFaults(0.3, seed=17).attach(schema.ALL_MODELS):
        for _ in range(4):  # notify, query and retries all report the same success
            retried(lambda: refunds.complete_refund(payment_store.get_refund("RF-fault-1"), "5030000009"))
    refunded = sum(r.amount_fen for r in payment_store.refunds_of_order(order.order_id) if r.status == "success")
    paid = sum(p.amount_fen for p in recorded_payments(order.order_id))
    assert refunded == paid == order.payable_fen
    assert counters("s1") == {"available": 30, "allocated": 0, "reserved": 0, "sold": 0, "stock_in": 30}
    assert orders.get_order(order.order_id).status == "refunded"


def test_a_stock_adjustment_whose_answer_was_lost_is_answered_as_applied_once(shop):
    """The TransactWrite commits, its answer is lost, botocore sends it again and meets its own
    movement key: that is the adjustment done, answered with its result, not a 500."""
    import json
    import uuid

    from botocore.awsrequest import AWSRequest
    from botocore.exceptions import ReadTimeoutError
    from botocore.httpsession import URLLib3Session

    from chalicelib.services import stock
    from chalicelib.storage.skus import SkuRecord
    from chalicelib.storage.stock import StockMovementRecord

    client = SkuRecord._get_connection().connection.client
    lost = []

    def deliver_then_lose_the_answer(request, **_kwargs):
        # The engine applies it; the caller sees a timeout and botocore retries. The retry's
        # idempotency token does not save us here: it is sent past the token's window (10 min),
        # as when the answer is lost for that long, so the retry meets the movement's condition.
        if not lost:
            body = json.loads(request.body)
            body["ClientRequestToken"] = str(uuid.uuid4())
            headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
            first = AWSRequest(method="POST", url=request.url, headers=headers, data=json.dumps(body)).prepare()
            lost.append(URLLib3Session().send(first).status_code)
            raise ReadTimeoutError(endpoint_url=request.url)

    client.meta.events.register("before-send.dynamodb.TransactWriteItems", deliver_then_lose_the_answer)
    try:
        assert stock.adjust_stock("s1", stock.StockChange("s1", delta=5), "到货", "admin") == 35
    finally:
        client.meta.events.unregister("before-send.dynamodb.TransactWriteItems", deliver_then_lose_the_answer)
    assert lost == [200]
    assert (counters("s1")["available"], counters("s1")["stock_in"]) == (35, 35)
    assert StockMovementRecord.count("s1") == 1
