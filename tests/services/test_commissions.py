"""Commissions from the orders stream on moto (services/commissions.py), fed stream-shaped records
or reconciled as the stream consumer would: frozen on payment at two levels, available after the
after-sales window, clawed back exactly once per refund (also when records are redelivered), never
counted on an order refunded before its record was read; the account is always its entries' sum."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import clock
from chalicelib.services import commissions
from chalicelib.storage import commissions as store
from chalicelib.storage import orders
from tests.services.analytics_records import order_change
from tests.services.commission_helpers import (complete, figures, paid_order, refund, referral_chain,
                                               store_with_rates)

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc)
ZERO = {"frozen_fen": 0, "available_fen": 0, "pending_fen": 0, "withdrawn_fen": 0, "clawed_back_fen": 0}


@pytest.fixture
def shop(aws, monkeypatch):
    monkeypatch.setenv("DISTRIBUTION_LEVELS", "2")
    with clock.frozen_at(NOW) as advance:
        store_with_rates(level1=100, level2=30)
        referral_chain("buyer", "dist1", "dist2")
        yield advance


def _records_of_life(order_id: str) -> list[dict]:
    """The stream records of an order placed then paid (as the consumer sees them)."""
    paid = orders.get_order(order_id)
    placed = orders.Order(**{**paid.__dict__, "status": "pending_payment", "paid_at": None, "transaction_id": None})
    return [order_change(None, placed), order_change(placed, paid)]


def test_a_paid_order_earns_frozen_commissions_at_both_levels_once_however_often_its_records_come(shop):
    paid_order("o1")  # 3 units of 1000 fen
    records = _records_of_life("o1")
    for _ in range(3):
        commissions.consume(records + list(reversed(records)))
    assert figures("dist1") == {**ZERO, "frozen_fen": 300}  # 10% of 3000
    assert figures("dist2") == {**ZERO, "frozen_fen": 90}   # 3%
    assert figures("buyer") == ZERO
    assert [(c.level, c.beneficiary_id, c.status) for c in store.commissions_of_order("o1")] == \
        [(1, "dist1", "frozen"), (2, "dist2", "frozen")]


def test_one_level_only_when_configured_and_nobody_earns_on_an_unreferred_buyer(shop, monkeypatch):
    monkeypatch.setenv("DISTRIBUTION_LEVELS", "1")
    paid_order("o1")
    commissions.reconcile("o1")
    assert figures("dist1")["frozen_fen"] == 300 and figures("dist2") == ZERO
    paid_order("o2", buyer="dist2")  # dist2 was referred by nobody
    assert commissions.reconcile("o2") == []


def test_an_order_refunded_before_its_record_is_read_earns_nothing(shop):
    paid_order("o1")
    refund("o1", "r1", (("s1", 2), ("s2", 1)), 3000, whole=True)
    commissions.consume(_records_of_life("o1"))
    assert store.commissions_of_order("o1") == []
    assert figures("dist1") == ZERO


def test_completion_then_the_window_makes_it_available_and_not_a_moment_before(shop):
    paid_order("o1")
    commissions.reconcile("o1")
    complete("o1")
    commissions.reconcile("o1")
    shop(timedelta(days=7) - timedelta(minutes=1))
    assert commissions.settle_due() == {"settled": 0}
    shop(timedelta(minutes=2))
    assert commissions.settle_due() == {"settled": 2}
    assert commissions.settle_due() == {"settled": 0}
    assert figures("dist1") == {**ZERO, "available_fen": 300}
    assert figures("dist2") == {**ZERO, "available_fen": 90}


def test_a_partial_refund_claws_back_its_lines_once_even_when_redelivered(shop):
    paid_order("o1")
    commissions.reconcile("o1")
    refund("o1", "r1", (("s1", 1),), 1000)
    for _ in range(3):
        commissions.reconcile("o1")
    assert figures("dist1") == {**ZERO, "frozen_fen": 200, "clawed_back_fen": 100}
    assert figures("dist2") == {**ZERO, "frozen_fen": 60, "clawed_back_fen": 30}
    refund("o1", "r2", (("s1", 1), ("s2", 1)), 2000, whole=True)
    commissions.reconcile("o1")
    commissions.reconcile("o1")
    assert figures("dist1") == {**ZERO, "clawed_back_fen": 300}
    assert {c.status for c in store.commissions_of_order("o1")} == {"void"}


def test_a_refund_after_settlement_claws_back_from_available_which_may_go_negative(shop):
    from chalicelib.services import withdrawals

    paid_order("o1")
    commissions.reconcile("o1")
    complete("o1")
    commissions.reconcile("o1")
    shop(timedelta(days=8))
    commissions.settle_due()
    withdrawals.request_withdrawal("dist1", 300, "all-of-it")  # everything leaves available
    refund("o1", "r1", (("s2", 1),), 1000)
    commissions.reconcile("o1")
    assert figures("dist1") == {**ZERO, "available_fen": -100, "pending_fen": 300, "clawed_back_fen": 100}


def test_the_stream_consumer_only_reconciles_orders_whose_status_or_refunds_moved(shop):
    paid_order("o1")
    paid = orders.get_order("o1")
    noted = orders.Order(**{**paid.__dict__, "shipping_upload": {"status": "pending"}})
    assert commissions.order_ids_to_reconcile([order_change(paid, noted)], orders.OrderRecord.Meta.table_name) == []
    assert commissions.consume(_records_of_life("o1"))["orders"] == 1


def test_a_group_buy_order_earns_only_once_its_group_succeeded(shop):
    paid_order("o1")
    orders.OrderRecord("o1").update(actions=[orders.OrderRecord.awaiting_group.set(True)])
    waiting = orders.get_order("o1")
    assert commissions.reconcile("o1") == [] and figures("dist1") == ZERO
    orders.OrderRecord("o1").update(actions=[orders.OrderRecord.awaiting_group.remove()])
    succeeded = orders.get_order("o1")
    assert commissions.consume([order_change(waiting, succeeded)])["orders"] == 1
    assert figures("dist1")["frozen_fen"] == 300


def test_a_refund_the_index_does_not_list_yet_is_retried_and_never_settled_past(shop, monkeypatch):
    """The refunds-by-order index is eventually consistent: a refund it does not show yet must hold
    the stream batch (redelivered) and the settlement, never be skipped for good."""
    from chalicelib.storage import payments

    paid_order("o1")
    commissions.reconcile("o1")
    complete("o1")
    commissions.reconcile("o1")
    refund("o1", "r1", (("s1", 1),), 1000)
    listed = payments.refunds_of_order
    monkeypatch.setattr(payments, "refunds_of_order", lambda order_id: [])  # the index lags
    with pytest.raises(commissions.RefundsNotListedYet):
        commissions.consume(_records_of_life("o1"))
    shop(timedelta(days=8))
    assert commissions.settle_due() == {"settled": 0}
    assert figures("dist1")["clawed_back_fen"] == 0 and figures("dist1")["available_fen"] == 0
    monkeypatch.setattr(payments, "refunds_of_order", listed)  # caught up
    commissions.settle_due()
    assert figures("dist1") == {**ZERO, "available_fen": 200, "clawed_back_fen": 100}


def test_misconfigured_distribution_raises_so_the_stream_batch_comes_again(shop, monkeypatch):
    from chalicelib import distribution_settings

    paid_order("o1")
    monkeypatch.setenv("COMMISSION_PERMILLE", "999")  # not valid
    with pytest.raises(distribution_settings.DistributionSettingsError):
        commissions.consume(_records_of_life("o1"))
    monkeypatch.delenv("COMMISSION_PERMILLE")  # mended: the redelivered batch earns
    commissions.consume(_records_of_life("o1"))
    assert figures("dist1")["frozen_fen"] == 300
