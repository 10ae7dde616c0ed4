"""Flash sales when DynamoDB fails mid-way (on DynamoDB Local): entries retried by their
clients, consumer batches redelivered by SQS, unpaid orders closed by the sweep. Afterwards: no
oversell, one order per ticket, every ticket decided, and every unit accounted for."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.errors import AppError
from chalicelib.schemas.flash_sales import FlashEntryMessage
from chalicelib.services import flash_admission, flash_orders, order_lifecycle
from chalicelib.storage import catalog, flash_sales, flash_transactions, schema
from chalicelib.storage.base import is_transient
from chalicelib.storage.flash_tickets import FlashEntryRecord, FlashTicketRecord
from chalicelib.storage.orders import OrderRecord
from tests.faults.injector import DynamoFaults
from tests.faults.test_fault_injection import MAX_TRIES, retried
from tests.flash.helpers import create_sale, entry
from tests.storage.order_fixtures import counters

pytestmark = pytest.mark.dynamodb_local
UNITS, USERS = 10, 20


@pytest.fixture
def card(dynamodb_local):
    catalog.create_product("p-card", name="礼品卡", category_path=["c1"], description=None, images=[], keywords=[],
                           virtual=True, now=clock.now())
    catalog.create_sku("card", product_id="p-card", specs={}, price_fen=10000, stock=100)


def _enter(user: int, sale_id: str, request_id: str) -> str:
    try:
        retried(lambda: flash_admission.enter(f"user-{user}", sale_id, entry("card", request_id=request_id),
                                              f"127.0.0.{user + 1}"))
        return "accepted"
    except AppError as error:
        return error.code


def _messages(sale_id: str) -> list[FlashEntryMessage]:
    """Every ticket's message, as SQS would (re)deliver them: in batches of 10."""
    return [FlashEntryMessage(ticket_id=t.ticket_id, sale_id=sale_id) for t in FlashTicketRecord.scan()]


def _drain(sale_id: str) -> None:
    """Redeliver each batch until it goes through, as SQS does after a failed invocation."""
    messages = retried(lambda: _messages(sale_id))
    for start in range(0, len(messages), 10):
        for _ in range(MAX_TRIES):
            try:
                flash_orders.process_entries(messages[start:start + 10])
                break
            except Exception as error:  # noqa: BLE001
                assert is_transient(error), error
        else:
            raise AssertionError("a batch kept failing")


def _assert_accounted(sale_id: str) -> None:
    sale = flash_sales.get_sale(sale_id, consistent=True)
    tickets = list(FlashTicketRecord.scan())
    assert {t.status for t in tickets} <= {"won", "lost"}, Counter(t.status for t in tickets)
    won = [t for t in tickets if t.status == "won"]
    placed = list(OrderRecord.scan())
    assert sorted(o.order_id for o in placed) == sorted(t.order_id for t in won)
    assert max(Counter(o.user_id for o in placed).values()) == 1
    live = sum(1 for o in placed if o.status == "pending_payment")
    assert sum(flash_sales.read_stock_shards(sale)) + live == UNITS - sum(1 for o in placed if o.status == "paid")
    sku = counters("card")  # and stock_in == available + allocated + reserved + sold
    assert sku["reserved"] == live and sku["allocated"] == sum(flash_sales.read_stock_shards(sale))
    held = {e.entry_id.split("#", 1)[1]: int(e.units) for e in FlashEntryRecord.scan()}
    assert all(held.get(t.user_id, 0) == 1 for t in won)
    assert all(units >= 0 for units in held.values())


@pytest.mark.parametrize("shards", [1, 4])
def test_entries_and_the_consumer_under_faults_sell_exactly_the_units(card, shards):
    sale_id = create_sale(sku_id="card", quantity=UNITS, per_user_limit=1, shards=shards)
    with DynamoFaults(0.3, seed=17 + shards).attach(schema.ALL_MODELS) as faults:
        outcomes = Counter(_enter(user, sale_id, f"req-{user:03d}-{n}") for user in range(USERS) for n in range(2))
        _drain(sale_id)
        _drain(sale_id)  # SQS delivers at least once: everything again
    # A retried entry spends a token too, so a few may meet the rate limit: a client would wait and retry.
    assert faults.injected and set(outcomes) <= {"accepted", "limit_exceeded", "rate_limited"}, outcomes
    assert OrderRecord.count() == UNITS
    _assert_accounted(sale_id)


def test_unpaid_flash_orders_closed_under_faults_give_every_unit_back_once(card):
    sale_id = create_sale(sku_id="card", quantity=UNITS, per_user_limit=1, shards=2)
    for user in range(UNITS):
        _enter(user, sale_id, f"request-{user:03d}")
    _drain(sale_id)
    deadline = max(o.pay_deadline for o in OrderRecord.scan())
    with clock.frozen_at(deadline + timedelta(seconds=1)):
        with DynamoFaults(0.3, seed=23).attach(schema.ALL_MODELS):
            for _ in range(MAX_TRIES):
                try:
                    order_lifecycle.sweep_overdue_orders()
                except Exception as error:  # noqa: BLE001 - the next sweep run continues
                    assert is_transient(error)
                if all(o.status == "cancelled" for o in retried(lambda: list(OrderRecord.scan(consistent_read=True)))):
                    break
    assert all(o.status == "cancelled" for o in OrderRecord.scan())
    assert sum(flash_sales.read_stock_shards(flash_sales.get_sale(sale_id))) == UNITS
    assert counters("card") == {"available": 90, "allocated": UNITS, "reserved": 0, "sold": 0, "stock_in": 100}
    assert not flash_sales.get_sale(sale_id, consistent=True).sold_out


def test_a_crash_between_taking_units_and_writing_the_orders_is_finished_by_redelivery(card, monkeypatch):
    sale_id = create_sale(sku_id="card", quantity=UNITS, per_user_limit=1, shards=2)
    for user in range(3):
        _enter(user, sale_id, f"request-{user:03d}")
    real = flash_transactions.write_orders

    def crash(*args, **kwargs):
        raise RuntimeError("Lambda timed out after the units were taken")

    monkeypatch.setattr(flash_transactions, "write_orders", crash)
    with pytest.raises(RuntimeError):
        flash_orders.process_entries(_messages(sale_id))
    assert Counter(t.status for t in FlashTicketRecord.scan()) == {"assigned": 3}
    monkeypatch.setattr(flash_transactions, "write_orders", real)
    assert flash_orders.process_entries(_messages(sale_id)) == {"resumed": 3, "won": 3}
    assert OrderRecord.count() == 3
    assert counters("card")["reserved"] == 3 and counters("card")["allocated"] == UNITS - 3
