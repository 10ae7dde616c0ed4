"""Commissions through the real stream path on AWS's DynamoDB Local: the local worker reads the
orders table's stream into the app's `count_order_changes` handler, which counts the commissions;
a refund's record delivered again after a crash claws back once."""
from __future__ import annotations

import pytest

from chalicelib.services import commissions
from local.worker import Worker
from tests.services.commission_helpers import figures, paid_order, refund, referral_chain, store_with_rates

pytestmark = pytest.mark.dynamodb_local


@pytest.fixture
def worker(dynamodb_local, monkeypatch):
    from app import app

    monkeypatch.setenv("DISTRIBUTION_LEVELS", "2")
    store_with_rates(level1=100, level2=30)
    referral_chain("buyer", "dist1", "dist2")
    worker = Worker(app, stream_start="LATEST")  # only what happens from now on (a shared engine)
    worker.drain_streams()
    return worker


def test_a_paid_order_read_from_the_stream_earns_and_its_refund_redelivered_claws_back_once(worker, monkeypatch):
    paid_order("o1")
    assert all(d.ok for d in worker.drain_streams())
    assert figures("dist1")["frozen_fen"] == 300 and figures("dist2")["frozen_fen"] == 90

    real, calls = commissions.consume, []

    def crash_after_counting(records):  # the Lambda dies after its writes: the batch comes again
        calls.append(len(records))
        outcome = real(records)
        if len(calls) == 1:
            raise ConnectionError("the Lambda timed out")
        return outcome

    monkeypatch.setattr(commissions, "consume", crash_after_counting)
    refund("o1", "r1", (("s1", 2),), 2000)
    deliveries = worker.drain_streams()
    deliveries += worker.drain_streams()  # the refused batch, read again
    assert [d.ok for d in deliveries if d.source == "count_order_changes"][:2] == [False, True]
    assert figures("dist1") == {"frozen_fen": 100, "available_fen": 0, "pending_fen": 0, "withdrawn_fen": 0,
                                "clawed_back_fen": 200}
    assert figures("dist2")["clawed_back_fen"] == 60
