"""Flash-sale rules without AWS: the window, shards, ticket ids and the GCRA rate limit."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.domain import flash_sales as rules
from chalicelib.domain.rate_limits import FLASH_ENTRY_PER_USER, RateLimit, allows

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("state, starts, ends, sold_out, expected", [
    ("active", NOW + timedelta(minutes=1), NOW + timedelta(hours=1), False, "upcoming"),
    ("active", NOW, NOW + timedelta(hours=1), False, "active"),
    ("active", NOW - timedelta(hours=1), NOW + timedelta(hours=1), True, "sold_out"),
    ("active", NOW - timedelta(hours=1), NOW, False, "ended"),
    ("ended", NOW - timedelta(hours=1), NOW + timedelta(hours=1), False, "ended"),
])
def test_a_sales_phase_follows_its_window_state_and_flag(state, starts, ends, sold_out, expected):
    assert rules.phase(state, starts, ends, sold_out, NOW).value == expected


@pytest.mark.parametrize("quantity, shards, expected", [(10, 4, [3, 3, 2, 2]), (8, 8, [1] * 8), (7, 1, [7])])
def test_units_split_over_shards_as_evenly_as_possible(quantity, shards, expected):
    assert rules.split_into_shards(quantity, shards) == expected


def test_a_ticket_tries_every_shard_once_starting_from_its_own():
    orders = [rules.shard_order(f"t{n}", 8) for n in range(200)]
    assert all(sorted(order) == list(range(8)) for order in orders)
    assert all(order[1] == (order[0] + 1) % 8 for order in orders)
    assert len({order[0] for order in orders}) == 8  # tickets spread over every shard


def test_ticket_and_order_ids_are_derived_and_valid_as_out_trade_no():
    ticket = rules.ticket_id_for("fs-1", "u1", "request-0001")
    assert ticket == rules.ticket_id_for("fs-1", "u1", "request-0001") != rules.ticket_id_for("fs-1", "u2", "request-0001")
    order_id = rules.order_id_for_ticket(ticket)
    assert len(order_id) == 24 and order_id.isalnum()


def test_a_bucket_allows_a_burst_of_five_then_two_per_second():
    limit, tat, allowed = FLASH_ENTRY_PER_USER, None, []
    for _ in range(7):  # seven requests at the same instant
        ok = allows(tat, 0, limit)
        allowed.append(ok)
        if ok:
            tat = max(tat or 0, 0) + limit.interval_ms
    assert allowed == [True] * 5 + [False, False]
    assert allows(tat, limit.interval_ms, limit)  # one interval later, one more
    assert limit.retry_after_seconds == 1


def test_an_idle_bucket_starts_full_again():
    limit = RateLimit("t", burst=3, per_second=1)
    assert allows(10_000, 60_000, limit)
