"""Each conditional write of a flash sale, on the path where its condition fails (moto)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib import clock
from chalicelib.domain.flash_sales import ticket_id_for
from chalicelib.schemas.flash_sales import FlashEntryMessage
from chalicelib.services import flash_admission, flash_orders
from chalicelib.storage import flash_sales, flash_tickets, flash_transactions, stores, transactions
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.skus import SkuRecord
from tests.flash.helpers import create_sale, entry
from tests.storage.order_fixtures import counters, make_order, make_product


@pytest.fixture
def sale(aws):
    make_product("p1", skus={"s1": 10})
    return flash_sales.get_sale(create_sale(sku_id="s1", quantity=4, shards=2, per_user_limit=1), consistent=True)


def _ticket(sale, user="u1", request_id="request-0001") -> flash_tickets.Ticket:
    return flash_tickets.Ticket(ticket_id=ticket_id_for(sale.sale_id, user, request_id), sale_id=sale.sale_id,
                                user_id=user, sku_id=sale.sku_id, quantity=1, status="queued",
                                created_at=clock.now(), delivery_method="pickup", store_id="st1")


def test_a_second_sale_with_the_same_id_or_more_units_than_available_is_refused(sale):
    with pytest.raises(ConditionFailed):
        flash_sales.create_sale(replace(sale, quantity=1, shards=1))
    with pytest.raises(flash_sales.SkuShort):
        flash_sales.create_sale(replace(sale, sale_id="fs-other", quantity=7, shards=1))
    assert counters("s1")["allocated"] == 4


def test_a_ticket_over_the_limit_or_seen_before_is_refused(sale):
    ticket = _ticket(sale)
    flash_tickets.accept_ticket(ticket, per_user_limit=1)
    with pytest.raises(flash_tickets.TicketExists):
        flash_tickets.accept_ticket(ticket, per_user_limit=1)
    with pytest.raises(flash_tickets.LimitReached):
        flash_tickets.accept_ticket(_ticket(sale, request_id="request-0002"), per_user_limit=1)
    assert flash_tickets.units_held(sale.sale_id, "u1") == 1


def test_an_empty_shard_and_a_moved_ticket_are_told_apart(sale):
    ticket = _ticket(sale)
    flash_tickets.accept_ticket(ticket, per_user_limit=1)
    flash_transactions.assign_units(ticket, 0, "o-1", clock.now())
    with pytest.raises(flash_transactions.TicketMoved):
        flash_transactions.assign_units(ticket, 1, "o-1", clock.now())
    other = _ticket(sale, user="u2")
    flash_tickets.accept_ticket(other, per_user_limit=1)
    flash_transactions.assign_units(other, 0, "o-2", clock.now())  # shard 0 held 2
    third = _ticket(sale, user="u3")
    flash_tickets.accept_ticket(third, per_user_limit=1)
    with pytest.raises(flash_transactions.ShardEmpty):
        flash_transactions.assign_units(third, 0, "o-3", clock.now())
    with pytest.raises(flash_transactions.TicketMoved):
        flash_transactions.lose_ticket(ticket, "sold_out", clock.now())


def test_writing_orders_the_sku_cannot_cover_stops_with_allocation_short(sale):
    stores.create_store("st1", name="店", address="上海", hours="9-21")
    ticket = flash_admission.enter("u1", sale.sale_id, entry("s1", delivery_method="pickup", store_id="st1"),
                                   "127.0.0.1")
    SkuRecord("s1").update(actions=[SkuRecord.allocated.set(0), SkuRecord.available.add(4)])  # by hand
    with pytest.raises(flash_transactions.AllocationShort):
        flash_orders.process_entries([FlashEntryMessage(ticket_id=ticket.ticket_id, sale_id=sale.sale_id)])
    assert flash_tickets.get_ticket(ticket.ticket_id).status == "assigned"  # kept for after the fix


def test_ending_twice_or_draining_on_a_stale_read_changes_nothing(sale):
    assert flash_transactions.begin_ending(sale.sale_id, clock.now())
    assert not flash_transactions.begin_ending(sale.sale_id, clock.now())
    with pytest.raises(flash_transactions.ShardsMoved):
        flash_transactions.drain_shard(sale, 0, 1)
    flash_transactions.drain_shard(sale, 0, 2)
    flash_transactions.drain_shard(sale, 1, 2)
    assert flash_transactions.finish_ending(sale.sale_id, clock.now())
    assert not flash_transactions.finish_ending(sale.sale_id, clock.now())
    with pytest.raises(flash_transactions.SaleEnded):
        flash_transactions.drain_shard(sale, 0, 0)
    assert flash_sales.get_sale(sale.sale_id, consistent=True).unsold_returned == 4
    assert counters("s1") == {"available": 10, "allocated": 0, "reserved": 0, "sold": 0, "stock_in": 10}


def test_a_flash_order_returns_to_an_ended_sale_as_ordinary_stock(sale):
    order = replace(make_order("o-flash", {"s1": 1}), flash_sale={"sale_id": sale.sale_id, "shard": 0,
                                                                  "ticket_id": "t1"})
    transactions.place_order_reserving_stock(order)  # reserved from available, as a stand-in
    flash_transactions.begin_ending(sale.sale_id, clock.now())
    with pytest.raises(flash_transactions.SaleEnded):
        flash_transactions.return_unit_to_sale(order, "timeout", clock.now())
    transactions.cancel_order_releasing_stock(order, "timeout", clock.now())
    with pytest.raises(transactions.StatusChanged):
        flash_transactions.return_unit_to_sale(order, "timeout", clock.now())


def test_the_sold_out_flag_is_not_set_once_a_unit_came_back(sale):
    assert not flash_sales.mark_sold_out(sale.sale_id, seen_generation=sale.returned + 1)
    assert flash_sales.mark_sold_out(sale.sale_id, seen_generation=sale.returned)
    assert flash_sales.get_sale(sale.sale_id, consistent=True).sold_out


def test_a_rate_bucket_refuses_past_its_burst_and_refills_with_time(aws):
    from datetime import timedelta

    from chalicelib.domain.rate_limits import FLASH_ENTRY_PER_USER as limit
    from chalicelib.storage import rate_limits

    start = clock.now()
    assert [rate_limits.take_token(limit, "u1", start) for _ in range(6)] == [True] * 5 + [False]
    assert rate_limits.take_token(limit, "u1", start + timedelta(milliseconds=500))  # one interval: one token
    assert not rate_limits.take_token(limit, "u1", start + timedelta(milliseconds=500))
    later = start + timedelta(minutes=1)  # idle: a full burst again
    assert [rate_limits.take_token(limit, "u1", later) for _ in range(6)] == [True] * 5 + [False]
