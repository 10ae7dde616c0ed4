"""Commission rules (domain/commissions.py): per-mille of what a line really cost, clawbacks that
add up to exactly the commission whatever the order of partial refunds, the figures as the sum of
the entries, the share link's scene."""
from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import commissions as rules
from chalicelib.domain.identity import referral_code_for, user_id_for


@dataclass(frozen=True)
class Line:
    sku_id: str
    product_id: str
    quantity: int
    payable_fen: int


def test_a_commission_is_per_mille_of_the_lines_payable_after_discounts_rounded_down():
    lines = [Line("s1", "p1", 3, 2999), Line("s2", "p2", 1, 500)]
    level1 = rules.line_commissions(lines, {"p1": rules.Rate(100, 30)}, rules.Rate(10, 0), 1)
    level2 = rules.line_commissions(lines, {"p1": rules.Rate(100, 30)}, rules.Rate(10, 0), 2)
    assert [c.commission_fen for c in level1] == [299, 5]  # 2999 * 10% = 299.9 -> 299; the default 1%
    assert [c.commission_fen for c in level2] == [89, 0]


@given(st.integers(1, 9), st.integers(0, 100_000), st.integers(0, 300), st.data())
def test_partial_refunds_in_any_order_claw_back_exactly_the_commission(quantity, payable, permille, data):
    (line,) = rules.line_commissions([Line("s1", "p1", quantity, payable)], {}, rules.Rate(permille, 0), 1)
    refunds = data.draw(st.lists(st.integers(1, quantity), max_size=6))
    lines, taken_total = (line,), 0
    for units in refunds:
        lines, taken = rules.clawback(lines, [("s1", units)], whole_order=False)
        assert taken >= 0
        taken_total += taken
    refunded = min(quantity, sum(refunds))
    assert lines[0].refunded_units == refunded and taken_total == lines[0].clawed_fen
    assert taken_total <= line.commission_fen
    if refunded == quantity:
        assert taken_total == line.commission_fen


def test_a_refund_without_lines_claws_back_only_when_it_made_the_order_wholly_refunded():
    lines = rules.line_commissions([Line("s1", "p1", 2, 1000), Line("s2", "p1", 1, 500)], {}, rules.Rate(100, 0), 1)
    assert rules.clawback(lines, [], whole_order=False)[1] == 0  # e.g. the delivery fee alone
    after, taken = rules.clawback(lines, [("s1", 1)], whole_order=False)
    assert taken == 50
    assert rules.clawback(after, [], whole_order=True)[1] == 100  # what was left


@given(st.lists(st.tuples(st.sampled_from(sorted(rules.MOVES)), st.integers(0, 10_000)), max_size=30))
def test_the_figures_are_the_sum_of_the_entries_and_money_is_only_moved_between_them(entries):
    figures = rules.balance(entries)
    earned = sum(amount for kind, amount in entries if kind == "earn")
    # Every fen earned is somewhere: frozen, available, pending, withdrawn or clawed back.
    assert sum(figures.values()) == earned


def test_rates_stay_within_what_profit_sharing_can_split():
    assert rules.valid_rate(200, 100) and not rules.valid_rate(200, 101) and not rules.valid_rate(-1, 0)
