"""The pure rules of group-buys and bargains: what a payment does to its group, when a group is
due to fail, the offer's pricing step, and the bargain's cuts (property-tested: never below the
floor, the cuts add up exactly, the last helper lands on the floor)."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import group_buy as rules
from chalicelib.domain import pricing
from chalicelib.domain.bargain import cut_amount
from chalicelib.domain.group_buy import GroupFacts, PaymentPlan, plan_payment

NOW = datetime(2026, 6, 18, 12, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(hours=1)


def facts(status="open", paid=1, size=3, expires=LATER, leader="o-lead") -> GroupFacts:
    return GroupFacts(status=status, paid_count=paid, size=size, expires_at=expires, leader_order_id=leader)


@pytest.mark.parametrize("group, order_id, plan", [
    (facts(status="opening", paid=0), "o-lead", PaymentPlan.LEAD),
    (facts(status="opening", paid=0), "o-other", PaymentPlan.REOPEN),  # nobody joins an opening group
    (facts(paid=1), "o-2", PaymentPlan.JOIN),
    (facts(paid=2), "o-3", PaymentPlan.FILL),
    (facts(paid=3), "o-4", PaymentPlan.REOPEN),
    (facts(status="succeeded", paid=3), "o-4", PaymentPlan.REOPEN),
    (facts(status="failed"), "o-2", PaymentPlan.REOPEN),
    (facts(expires=NOW), "o-2", PaymentPlan.REOPEN),  # the window ended: never a place after it
    (None, "o-2", PaymentPlan.REOPEN),
    (facts(paid=1, size=2), "o-2", PaymentPlan.FILL),
])
def test_what_a_payment_does_to_its_group(group, order_id, plan):
    assert plan_payment(group, order_id, NOW) is plan


def test_a_reopened_group_is_cut_at_the_activity_end_and_due_at_once_after_it():
    window = timedelta(hours=48)
    assert rules.reopened_window_end(NOW, window, NOW + timedelta(days=7)) == NOW + window
    assert rules.reopened_window_end(NOW, window, NOW + timedelta(hours=1)) == NOW + timedelta(hours=1)
    assert rules.reopened_window_end(NOW, window, NOW - timedelta(hours=1)) == NOW
    assert rules.reopened_window_end(NOW, window, None) == NOW


def test_when_a_group_is_due_to_fail():
    assert not rules.due_to_fail("open", LATER, LATER, NOW)
    assert rules.due_to_fail("open", NOW, NOW, NOW)
    assert rules.due_to_fail("opening", LATER, NOW - timedelta(seconds=1), NOW)  # its leader never paid
    assert not rules.due_to_fail("succeeded", NOW - timedelta(days=1), None, NOW)
    assert not rules.due_to_fail("failed", NOW - timedelta(days=1), None, NOW)


def test_the_offer_step_prices_one_unit_at_the_offer_and_nothing_stacks_on_it():
    item = pricing.Item(sku_id="s1", product_id="p1", name="脐橙", specs={}, price_fen=2990, quantity=1)
    offer = pricing.Offer(kind="group_buy", code="act-1", sku_id="s1", unit_price_fen=1990, description="3人团价")
    quote = pricing.price([item], pricing.PricingContext(delivery_method="pickup", offer=offer,
                                                         member_discount_permille=900))
    assert (quote.payable_fen, [(a.kind, a.code, a.amount_fen) for a in quote.adjustments]) == \
        (1990, [("group_buy", "act-1", 1000)])
    with pytest.raises(pricing.OfferItemsMismatch):
        pricing.price([pricing.Item(**{**item.__dict__, "quantity": 2})],
                      pricing.PricingContext(delivery_method="pickup", offer=offer))
    with pytest.raises(pricing.InsufficientPoints):
        pricing.price([item], pricing.PricingContext(delivery_method="pickup", offer=offer, points_balance=10_000,
                                                     points_requested=100))


def test_an_offer_above_the_price_is_no_surcharge():
    item = pricing.Item(sku_id="s1", product_id="p1", name="脐橙", specs={}, price_fen=1500, quantity=1)
    offer = pricing.Offer(kind="bargain", code="b1", sku_id="s1", unit_price_fen=1990, description="砍价")
    assert pricing.price([item], pricing.PricingContext(delivery_method="pickup", offer=offer)).payable_fen == 1500


@settings(max_examples=300, deadline=None)
@given(start=st.integers(2, 1_000_000), floor_share=st.floats(0, 0.99), helpers=st.integers(1, 100),
       seed=st.integers(0, 2**32))
def test_cuts_never_pass_the_floor_add_up_exactly_and_the_last_lands_on_it(start, floor_share, helpers, seed):
    floor = int(start * floor_share)
    draws = random.Random(seed)
    price, amounts = start, []
    while price > floor:
        amount = cut_amount(price - floor, len(amounts), helpers, draws.random())
        assert 1 <= amount <= price - floor
        price -= amount
        amounts.append(amount)
        assert len(amounts) <= helpers  # never more helpers than configured
    assert price == floor and sum(amounts) == start - floor
    if start - floor >= helpers:
        assert len(amounts) == helpers  # exactly N helpers when every one can cut at least a fen
    assert cut_amount(0, len(amounts), helpers, 0.5) == 0


def test_a_cut_refuses_nonsense():
    for args in ((-1, 0, 3, 0.5), (10, -1, 3, 0.5), (10, 0, 0, 0.5), (10, 0, 3, 1.0)):
        with pytest.raises(ValueError):
            cut_amount(*args)
