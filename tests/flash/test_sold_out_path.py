"""The sold-out path of admission, call by call (moto): a sold-out entry writes nothing and
reads at most once, a replayed request still answers its ticket, a unit coming back reopens
entries within SALE_CACHE_SECONDS, and entries that can still win keep their rate limits."""
from __future__ import annotations

from collections import Counter

import pytest

from chalicelib import clock
from chalicelib.errors import AppError
from chalicelib.services import flash_admission, flash_sales as sales_service
from chalicelib.storage import catalog, flash_sales, flash_transactions, orders, schema
from chalicelib.storage.flash_tickets import FlashTicketRecord, get_sale_and_ticket
from chalicelib.storage.rate_limits import RateLimitRecord
from tests.flash.helpers import create_sale, drain_entries, entry

WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


class DynamoCalls:
    """Every DynamoDB request the app's clients make inside the block: (operation, parameters)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self._clients: list = []

    def __enter__(self) -> "DynamoCalls":
        for model in schema.ALL_MODELS:
            client = model._get_connection().connection.client
            if all(client is not seen for seen in self._clients):
                client.meta.events.register("before-parameter-build.dynamodb", self._record)
                self._clients.append(client)
        return self

    def __exit__(self, *exc) -> None:
        for client in self._clients:
            client.meta.events.unregister("before-parameter-build.dynamodb", self._record)

    def _record(self, params: dict, model, **_kwargs) -> None:
        self.calls.append((model.name, params))

    @property
    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]

    @property
    def writes(self) -> list[str]:
        return [name for name in self.operations if name in WRITE_OPERATIONS]

    @property
    def reads(self) -> list[str]:
        return [name for name in self.operations if name not in WRITE_OPERATIONS]


@pytest.fixture
def card(aws):
    catalog.create_product("p-card", name="礼品卡", category_path=["c1"], description=None, images=[], keywords=[],
                           virtual=True, now=clock.now())
    catalog.create_sku("card", product_id="p-card", specs={}, price_fen=10000, stock=100)


@pytest.fixture
def instance_clock(monkeypatch):
    """The clock of this instance's sale cache and count window, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr(sales_service, "monotonic", lambda: now[0])
    return now


def _enter(user: str, sale_id: str, request_id: str | None = None, ip: str = "127.0.0.1"):
    """The ticket, or the refusal's code."""
    try:
        return flash_admission.enter(user, sale_id, entry("card", request_id=request_id), ip)
    except AppError as error:
        return error.code


def _sold_out_sale(units: int = 1) -> tuple[str, list]:
    """A sale whose every unit was won (the consumer raises the flag with the last one)."""
    sale_id = create_sale(sku_id="card", quantity=units, per_user_limit=1)
    tickets = [_enter(f"winner-{n}", sale_id, request_id=f"winner-request-{n}", ip=f"127.0.1.{n + 1}")
               for n in range(units)]
    assert drain_entries() == {"assigned": units, "won": units}
    assert flash_sales.get_sale(sale_id, consistent=True).sold_out
    return sale_id, tickets


def test_a_sold_out_entry_writes_nothing_and_reads_once_cold_or_warm(card, instance_clock):
    sale_id, _ = _sold_out_sale()
    buckets = RateLimitRecord.count()
    with DynamoCalls() as cold:  # first entry since the consumer dropped the cache
        assert _enter("late-1", sale_id) == "sold_out"
    with DynamoCalls() as warm:
        assert _enter("late-2", sale_id) == "sold_out"
    assert cold.operations == ["BatchGetItem"] and cold.writes == []  # the sale and the ticket, one call
    assert warm.operations == ["GetItem"] and warm.writes == []  # the ticket only: a replay would answer it
    assert [params["TableName"] for _, params in warm.calls] == [FlashTicketRecord.Meta.table_name]
    assert RateLimitRecord.count() == buckets  # no bucket touched


def test_one_user_hammering_a_sold_out_sale_is_told_sold_out_not_rate_limited(card, instance_clock):
    sale_id, _ = _sold_out_sale()
    with clock.frozen_at(clock.now()), DynamoCalls() as calls:
        answers = [_enter("hammer-1", sale_id) for _ in range(12)]
    assert answers == ["sold_out"] * 12  # past the burst of 5: it spends no token
    assert calls.writes == [] and len(calls.reads) == 12
    assert not [record for record in RateLimitRecord.scan() if record.bucket.endswith(":hammer-1")]


def test_a_request_accepted_before_the_sell_out_replayed_after_it_answers_its_ticket(card, instance_clock):
    sale_id, (ticket,) = _sold_out_sale()
    sales_service.forget_sale(sale_id)
    with DynamoCalls() as cold:
        replayed_cold = _enter("winner-0", sale_id, request_id="winner-request-0", ip="127.0.1.1")
    with DynamoCalls() as warm:
        replayed_warm = _enter("winner-0", sale_id, request_id="winner-request-0", ip="127.0.1.1")
    assert replayed_cold.ticket_id == replayed_warm.ticket_id == ticket.ticket_id
    assert replayed_warm.status == "won" and replayed_warm.order_id
    assert (cold.operations, warm.operations) == (["BatchGetItem"], ["GetItem"])
    assert _enter("winner-0", sale_id, request_id="a-new-request") == "sold_out"
    rejects = sales_service.admin_view(sale_id).rejects
    assert (rejects["duplicate_request"], rejects["sold_out"]) == (2, 1)


def test_a_unit_coming_back_reopens_entries_within_the_cache_bound(card, instance_clock):
    sale_id, (ticket,) = _sold_out_sale()
    assert _enter("next-buyer", sale_id) == "sold_out"  # this instance now holds the sale as sold out
    order = orders.get_order(flash_admission.ticket_for_user("winner-0", ticket.ticket_id).order_id)
    flash_transactions.return_unit_to_sale(order, "timeout", clock.now())  # another instance closed it
    assert not flash_sales.get_sale(sale_id, consistent=True).sold_out
    instance_clock[0] += sales_service.SALE_CACHE_SECONDS * 0.9
    assert _enter("next-buyer", sale_id) == "sold_out"  # stale, within the bound
    instance_clock[0] += sales_service.SALE_CACHE_SECONDS * 0.1
    accepted = _enter("next-buyer", sale_id)
    assert accepted.status == "queued"
    assert drain_entries() == {"assigned": 1, "won": 1}
    assert flash_sales.get_sale(sale_id, consistent=True).sold_out  # and out again with it


def test_the_counts_of_refused_entries_are_written_once_per_window(card, instance_clock):
    sale_id, _ = _sold_out_sale()
    sales_service.flush_counts(sale_id)
    with DynamoCalls() as within:
        assert [_enter(f"late-{n}", sale_id) for n in range(5)] == ["sold_out"] * 5
    instance_clock[0] += sales_service.COUNT_FLUSH_SECONDS
    with DynamoCalls() as closing:
        assert _enter("late-5", sale_id) == "sold_out"
    assert within.writes == []
    # The entry that closes the window (and here also refreshes the sale) carries the window's
    # counts: one UpdateItem on a stats item, whatever the number of entries.
    assert closing.operations == ["BatchGetItem", "UpdateItem"]
    assert closing.calls[1][1]["TableName"] == flash_sales.FlashCounterRecord.Meta.table_name
    assert sales_service.admin_view(sale_id).rejects["sold_out"] == 6


def test_an_entry_that_can_still_win_meets_the_rate_limits_and_costs_three_write_calls(card, instance_clock):
    sale_id = create_sale(sku_id="card", quantity=10, per_user_limit=1)
    assert _enter("first", sale_id).status == "queued"  # the cache is warm from here
    with DynamoCalls() as accepted:
        assert _enter("second", sale_id, ip="127.0.0.2").status == "queued"
    assert Counter(accepted.writes) == {"UpdateItem": 2, "TransactWriteItems": 1}  # 2 buckets, ticket + units
    assert Counter(accepted.reads) == {"GetItem": 2}  # the ticket (a replay?) and the user's units
    with clock.frozen_at(clock.now()):
        answers = [_enter("burst", sale_id, ip="127.0.0.3") for _ in range(7)]
    assert answers[0].status == "queued" and answers[1:5] == ["limit_exceeded"] * 4
    assert answers[5:] == ["rate_limited"] * 2  # the sixth and seventh of a burst of five


def test_the_consumer_raises_the_flag_with_the_last_unit_so_no_entry_is_accepted_to_lose(card, instance_clock):
    sale_id = create_sale(sku_id="card", quantity=2, per_user_limit=1)
    for n in range(2):
        assert _enter(f"buyer-{n}", sale_id, ip=f"127.0.2.{n + 1}").status == "queued"
    assert drain_entries() == {"assigned": 2, "won": 2}  # no ticket had to lose for the flag to go up
    assert flash_sales.get_sale(sale_id, consistent=True).sold_out
    assert _enter("buyer-2", sale_id) == "sold_out"
    assert drain_entries() == {}


def test_an_unknown_sale_is_still_not_found_and_cached_as_such_for_a_moment(card, instance_clock):
    with DynamoCalls() as first:
        assert _enter("someone", "fs-unknown") == "flash_sale_not_found"
    with DynamoCalls() as second:
        assert _enter("someone", "fs-unknown") == "flash_sale_not_found"
    assert (first.operations, second.operations) == (["BatchGetItem"], [])


def test_keys_dynamodb_leaves_unprocessed_are_read_on_their_own(card, monkeypatch):
    sale_id, (ticket,) = _sold_out_sale()
    connection = FlashTicketRecord._get_connection().connection
    real = connection.dispatch

    def unprocessed(operation, kwargs):
        if operation == "BatchGetItem":
            return {"Responses": {}, "UnprocessedKeys": kwargs["RequestItems"]}
        return real(operation, kwargs)

    monkeypatch.setattr(connection, "dispatch", unprocessed)
    sale, found = get_sale_and_ticket(sale_id, ticket.ticket_id)
    assert sale.sale_id == sale_id and sale.sold_out and found.ticket_id == ticket.ticket_id
    assert get_sale_and_ticket("fs-unknown", "t-unknown") == (None, None)
