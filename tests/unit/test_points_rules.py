"""The points rules (domain/points.py) and member levels (domain/members.py), without AWS."""
from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import members, points
from chalicelib.domain.pricing import InsufficientPoints, Item, PricingContext, price

POLICY = points.PointsPolicy()
TODAY = date(2026, 12, 4)


def account(**lots: int) -> points.Account:
    return points.Account("u1", lots={date.fromisoformat(day.replace("_", "-")[1:]): held for day, held in lots.items()})


def test_points_earned_in_a_month_expire_together_at_the_end_of_the_month_a_year_later():
    assert points.expires_on_for(date(2026, 12, 4), POLICY) == date(2027, 12, 31)
    assert points.expires_on_for(date(2026, 1, 31), POLICY) == date(2027, 1, 31)
    assert points.expires_on_for(date(2027, 1, 1), points.PointsPolicy(valid_months=13)) == date(2028, 2, 29)


def test_spending_takes_the_lot_expiring_first_and_never_an_expired_one():
    held = account(d2026_11_30=100, d2026_12_31=50, d2027_06_30=500)  # the November lot expired already
    assert held.balance(TODAY) == 550
    assert points.take(held, 120, TODAY) == {date(2026, 12, 31): 50, date(2027, 6, 30): 70}
    with pytest.raises(points.NotEnoughPoints) as refused:
        points.take(held, 551, TODAY)
    assert refused.value.available == 550


def test_points_of_a_lot_that_expired_meanwhile_do_not_come_back():
    kept, lost = points.restorable({date(2026, 11, 30): 30, date(2027, 1, 31): 70}, TODAY)
    assert kept == {date(2027, 1, 31): 70} and lost == 30


@given(used=st.integers(1, 10_000), payable=st.integers(1, 1_000_000),
       refunds=st.lists(st.integers(1, 200_000), min_size=1, max_size=6))
@settings(max_examples=200, deadline=None)
def test_refunds_give_back_each_point_once_and_all_of_them_when_the_money_is_all_back(used, payable, refunds):
    parts = {date(2027, 1, 31): used // 3, date(2027, 6, 30): used - used // 3}
    refunded, given_back = 0, {}
    for amount in refunds:
        after = min(payable, refunded + amount)
        before_points, after_points = points.refund_share(used, payable, refunded, after)
        for day, share in points.parts_between(parts, before_points, after_points).items():
            given_back[day] = given_back.get(day, 0) + share
        refunded = after
    assert all(given_back.get(day, 0) <= held for day, held in parts.items())
    expected = used if refunded >= payable else used * refunded // payable
    assert sum(given_back.values()) == expected


def test_a_refund_gives_back_the_longest_lived_points_first():
    parts = {date(2027, 1, 31): 40, date(2027, 6, 30): 60}
    assert points.parts_between(parts, 0, 70) == {date(2027, 6, 30): 60, date(2027, 1, 31): 10}
    assert points.parts_between(parts, 70, 100) == {date(2027, 1, 31): 30}


def test_consecutive_sign_ins_build_a_streak_with_a_bonus_on_the_seventh_day_and_a_gap_restarts_it():
    yesterday = points.Account("u1", last_sign_in=date(2026, 12, 3), streak=6)
    assert points.sign_in_reward(yesterday, TODAY, POLICY) == (25, 7)
    assert points.sign_in_reward(points.Account("u1", last_sign_in=date(2026, 12, 2), streak=6), TODAY, POLICY) == (5, 1)
    assert points.sign_in_reward(points.Account("u1"), TODAY, POLICY) == (5, 1)


def test_a_completed_order_earns_a_point_per_whole_yuan_kept_paid():
    assert points.earned_for_order(12_345, 0, POLICY) == 123
    assert points.earned_for_order(12_345, 2_400, POLICY) == 99
    assert points.earned_for_order(10_000, 10_000, POLICY) == 0


def _quote(points_balance: int, requested: int | None, price_fen: int = 10_000):
    items = [Item("s1", "p1", "榴莲", {}, price_fen, 1), Item("s2", "p2", "山竹", {}, 3_333, 1)]
    return price(items, PricingContext(delivery_method="pickup", points_balance=points_balance,
                                       points_requested=requested, points_max_redeem_permille=500))


def test_points_pay_at_most_half_the_goods_and_the_preview_says_how_many_can_be_used():
    quote = _quote(points_balance=100_000, requested=None)
    assert quote.points_usable == 6_666 and quote.points_used == 0 and quote.payable_fen == 13_333
    quote = _quote(points_balance=100_000, requested=6_666)
    assert quote.payable_fen == 13_333 - 6_666 and quote.discount_fen == 6_666
    assert [a.kind for a in quote.adjustments] == ["points"]
    assert sum(line.discount_fen for line in quote.lines) == 6_666


def test_asking_for_more_points_than_usable_is_refused_with_the_usable_figure():
    with pytest.raises(InsufficientPoints) as refused:
        _quote(points_balance=500, requested=501)
    assert refused.value.code == "insufficient_points" and refused.value.details[0]["points_usable"] == 500


def test_points_never_cost_the_buyer_free_shipping():
    items = [Item("s1", "p1", "榴莲", {}, 10_000, 1)]
    quote = price(items, PricingContext(delivery_method="express", points_balance=5_000, points_requested=5_000))
    assert quote.delivery_fee_fen == 0 and quote.payable_fen == 5_000


def test_levels_follow_lifetime_and_windowed_spend():
    rules = members.DEFAULT_RULES
    assert members.membership(members.Spend(499_999, {}), rules, TODAY).level == "normal"
    vip = members.membership(members.Spend(500_000, {TODAY: 500_000}), rules, TODAY)
    assert (vip.level, vip.discount_permille) == ("vip", 950)
    recent = {date(2026, 6, 1): 3_000_000, date(2026, 12, 1): 2_000_000}
    assert members.membership(members.Spend(5_000_000, recent), rules, TODAY).level == "black_gold"
    old = {date(2025, 12, 1): 3_000_000, date(2026, 12, 1): 2_000_000}  # 368 days ago falls out of the window
    assert members.membership(members.Spend(5_000_000, old), rules, TODAY).level == "vip"
