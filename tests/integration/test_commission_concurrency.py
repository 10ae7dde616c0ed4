"""Commissions under real concurrency on AWS's DynamoDB Local engine (real threads): withdrawals
racing for one available balance never take more than it; the same request_id raced is one
withdrawal; a clawback racing the settlement of the same commission is counted once, from
wherever the money was."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.services import commissions, withdrawals
from chalicelib.storage import commissions as store
from chalicelib.storage.withdrawals import WithdrawalRecord
from tests.integration.concurrency import race
from tests.services.commission_helpers import complete, figures, paid_order, refund, referral_chain, store_with_rates

pytestmark = pytest.mark.dynamodb_local


def _completed_order(monkeypatch) -> None:
    """dist1 referred the buyer of a completed 3,000 fen order (10%: 300 fen), settling at once."""
    monkeypatch.setenv("COMMISSION_FREEZE_DAYS", "0")
    monkeypatch.setenv("DISTRIBUTION_LEVELS", "1")
    store_with_rates(level1=100, level2=0)
    referral_chain("buyer", "dist1", None)
    paid_order("o1")
    commissions.reconcile("o1")
    complete("o1")
    commissions.reconcile("o1")


@pytest.fixture
def earned(dynamodb_local, monkeypatch):
    """dist1 has 300 fen available."""
    _completed_order(monkeypatch)
    commissions.settle_due(now=clock.now() + timedelta(seconds=1))
    assert figures("dist1")["available_fen"] == 300


@pytest.mark.parametrize("workers", [10, 30])
def test_concurrent_withdrawals_never_take_more_than_is_available(earned, workers):
    outcomes = race(workers, lambda n: withdrawals.request_withdrawal("dist1", 100, f"req-{n}")[1])
    assert outcomes.count(True) == 3
    assert set(outcomes) == {True, "insufficient_commission"}
    assert figures("dist1") == {"frozen_fen": 0, "available_fen": 0, "pending_fen": 300, "withdrawn_fen": 0,
                                "clawed_back_fen": 0}
    assert WithdrawalRecord.count() == 3


def test_the_same_request_id_raced_is_one_withdrawal(earned):
    outcomes = race(10, lambda n: withdrawals.request_withdrawal("dist1", 150, "same")[0].withdrawal_id)
    assert len(set(outcomes)) == 1 and WithdrawalRecord.count() == 1
    assert figures("dist1")["pending_fen"] == 150


def test_a_clawback_racing_the_settlement_counts_once(dynamodb_local, monkeypatch):
    _completed_order(monkeypatch)
    refund("o1", "r1", (("s1", 1),), 1000)
    later = clock.now() + timedelta(seconds=1)
    race(8, lambda n: commissions.settle_due(now=later) if n % 2 else commissions.reconcile("o1"))
    account = figures("dist1")
    assert account["clawed_back_fen"] == 100 and account["frozen_fen"] + account["available_fen"] == 200
    (commission,) = store.commissions_of_order("o1")
    assert commission.refunds == {"r1"} and commission.clawed_fen == 100
