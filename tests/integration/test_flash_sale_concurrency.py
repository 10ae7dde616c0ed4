"""Flash sales under a real surge, on AWS's DynamoDB Local engine: many threads entering while
several consumers drain the queue (moto's SQS server), with and without sharded stock."""
from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from chalicelib import clock, queues
from chalicelib.errors import AppError
from chalicelib.schemas.flash_sales import FlashEntryMessage
from chalicelib.services import flash_admission, flash_orders
from chalicelib.storage import catalog, flash_sales
from chalicelib.storage.flash_tickets import FlashTicketRecord
from chalicelib.storage.orders import OrderRecord
from tests.flash.helpers import create_sale, entry
from tests.integration.concurrency import race
from tests.storage.order_fixtures import counters

pytestmark = pytest.mark.dynamodb_local

USERS, ENTRIES_PER_USER, UNITS = 500, 4, 100


@pytest.fixture
def gift_card(dynamodb_local):
    catalog.create_product("p-card", name="礼品卡", category_path=["c1"], description=None, images=[], keywords=[],
                           virtual=True, now=clock.now())
    catalog.create_sku("card-100", product_id="p-card", specs={}, price_fen=10000, stock=1000)
    sqs, url = boto3.client("sqs"), queues.queue_url(queues.FLASH_ENTRIES.name)
    for _ in range(1000):  # empty it of earlier tests' messages (SQS purges once a minute at most)
        left = _receive()
        if not left:
            break
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(left)])


def _receive(max_messages: int = 10) -> list[dict]:
    return boto3.client("sqs").receive_message(QueueUrl=queues.queue_url(queues.FLASH_ENTRIES.name),
                                               MaxNumberOfMessages=max_messages, WaitTimeSeconds=0,
                                               VisibilityTimeout=30).get("Messages", [])


def _consume(stop: threading.Event) -> None:
    """One consumer: batches of 10 until the entries stopped and the queue is empty."""
    sqs, url = boto3.client("sqs"), queues.queue_url(queues.FLASH_ENTRIES.name)
    for _ in range(10_000):
        received = _receive()
        if not received:
            if stop.is_set():
                return
            continue
        flash_orders.process_entries([FlashEntryMessage.model_validate_json(m["Body"]) for m in received])
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(received)])


def _surge(sale_id: str) -> Counter:
    """2,000 entries from 500 users (each from its own loopback address), shuffled, 24 at a
    time, while 4 consumers drain the queue."""
    attempts = [(user, n) for user in range(USERS) for n in range(ENTRIES_PER_USER)]
    random.Random(7).shuffle(attempts)

    def attempt(pair):
        user, _ = pair
        try:
            flash_admission.enter(f"user-{user}", sale_id, entry("card-100", request_id=uuid.uuid4().hex),
                                  f"127.0.{user // 250}.{user % 250 + 1}")
            return "accepted"
        except AppError as error:
            return error.code

    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=4) as consumers:
        running = [consumers.submit(_consume, stop) for _ in range(4)]
        with ThreadPoolExecutor(max_workers=24) as entrants:
            outcomes = Counter(entrants.map(attempt, attempts))
        stop.set()
        for consumer in running:
            consumer.result()
    return outcomes


@pytest.mark.parametrize("shards", [1, 8])
def test_two_thousand_entries_for_a_hundred_units_make_exactly_a_hundred_orders(gift_card, shards):
    sale_id = create_sale(sku_id="card-100", quantity=UNITS, per_user_limit=1, shards=shards)
    outcomes = _surge(sale_id)

    assert set(outcomes) <= {"accepted", "limit_exceeded", "sold_out"}, outcomes
    placed = list(OrderRecord.scan())
    assert len(placed) == UNITS
    assert max(Counter(order.user_id for order in placed).values()) == 1
    tickets = list(FlashTicketRecord.scan())
    assert len(tickets) == outcomes["accepted"]
    assert Counter(ticket.status for ticket in tickets) == {"won": UNITS, "lost": outcomes["accepted"] - UNITS}
    sale = flash_sales.get_sale(sale_id, consistent=True)
    shards_left = flash_sales.read_stock_shards(sale)
    assert sum(shards_left) == 0 and min(shards_left) == 0 and sale.sold_out
    assert counters("card-100") == {"available": 900, "allocated": 0, "reserved": UNITS, "sold": 0, "stock_in": 1000}
    counts = flash_sales.read_counts(sale)
    assert (counts.won, counts.lost, counts.queued) == (UNITS, outcomes["accepted"] - UNITS, 0)


def test_the_consumer_run_twice_on_one_batch_makes_no_extra_order(gift_card):
    sale_id = create_sale(sku_id="card-100", quantity=5, per_user_limit=1, shards=2)
    for user in range(8):
        flash_admission.enter(f"user-{user}", sale_id, entry("card-100"), f"127.0.0.{user + 1}")
    received = _receive() + _receive()
    messages = [FlashEntryMessage.model_validate_json(m["Body"]) for m in received]
    assert len(messages) == 8
    first, second = race(2, lambda n: flash_orders.process_entries(messages))
    again = flash_orders.process_entries(messages)
    assert first.get("won", 0) + second.get("won", 0) == 5
    assert again == {"done_before": 8}
    assert OrderRecord.count() == 5
    assert counters("card-100")["reserved"] == 5 and counters("card-100")["allocated"] == 0
    assert Counter(t.status for t in FlashTicketRecord.scan()) == {"won": 5, "lost": 3}


def test_twenty_simultaneous_requests_of_one_user_get_exactly_the_burst_of_five(dynamodb_local):
    from chalicelib.domain.rate_limits import FLASH_ENTRY_PER_USER
    from chalicelib.storage import rate_limits

    with clock.frozen_at(clock.now()):
        allowed = race(20, lambda n: rate_limits.take_token(FLASH_ENTRY_PER_USER, "user-1", clock.now()))
    assert allowed.count(True) == 5
