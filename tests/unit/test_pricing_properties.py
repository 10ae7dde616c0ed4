"""Properties of pricing with activities and coupons (hypothesis): the fen add up, the chosen
combination is the cheapest legal one (against a brute force written independently here), and
the result does not depend on the order the wallet or the activities come in."""
from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.domain import coupons, pricing, promotions
from chalicelib.domain.coupons import (CouponNotApplicable, CouponScope, CouponsDoNotStack, CouponTerms,
                                       FullReductionActivity, WalletCoupon)
from chalicelib.domain.money import apportion
from chalicelib.domain.pricing import DeliveryPolicy, Item, PricingContext

NOW = datetime(2025, 6, 18, 12, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
PRODUCTS = {"p-apple": ("food", "fruit"), "p-pear": ("food", "fruit"), "p-milk": ("food", "dairy"),
            "p-pen": ("office",)}
CATEGORIES = ("food", "fruit", "dairy", "office")
PROPERTIES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

items_strategy = st.lists(st.tuples(st.sampled_from(sorted(PRODUCTS)), st.integers(1, 30_000), st.integers(1, 3)),
                          min_size=1, max_size=5).map(
    lambda rows: [Item(sku_id=f"s{index}", product_id=product_id, name=product_id, specs={}, price_fen=price,
                       quantity=quantity, category_path=PRODUCTS[product_id])
                  for index, (product_id, price, quantity) in enumerate(rows)])

scope_strategy = st.one_of(st.just(CouponScope()), st.builds(
    CouponScope,
    category_ids=st.frozensets(st.sampled_from(CATEGORIES), max_size=2),
    product_ids=st.frozensets(st.sampled_from(sorted(PRODUCTS)), max_size=2),
    excluded_product_ids=st.frozensets(st.sampled_from(sorted(PRODUCTS)), max_size=1)))

terms_strategy = st.builds(
    CouponTerms,
    kind=st.sampled_from(coupons.COUPON_KINDS),
    threshold_fen=st.sampled_from([0, 1000, 5000, 10_000, 20_000, 50_000]),
    off_fen=st.one_of(st.integers(1, 3000), st.integers(1, 20_000)),
    rate_permille=st.integers(1, 999),
    cap_fen=st.sampled_from([0, 500, 3000]),
    scope=scope_strategy,
    stack_group=st.sampled_from(["default", "a", "b", "c"]))


@st.composite
def wallet_strategy(draw, max_size: int = 6) -> tuple[WalletCoupon, ...]:
    wallet = []
    for index in range(draw(st.integers(0, max_size))):
        starts = draw(st.sampled_from([-48, -48, -1, 0, 1])) * HOUR  # 1: not yet valid
        ends = draw(st.sampled_from([48, 72, 48, 1, 0])) * HOUR  # 0: expired (valid_to is excluded)
        wallet.append(WalletCoupon(
            coupon_id=f"c{index}", template_id=f"t{index}", name=f"coupon {index}", terms=draw(terms_strategy),
            status=draw(st.sampled_from(["unused"] * 6 + ["locked", "used"])),
            valid_from=NOW + starts, valid_to=NOW + ends))
    return tuple(wallet)


@st.composite
def activities_strategy(draw) -> tuple[FullReductionActivity, ...]:
    activities = []
    for index in range(draw(st.integers(0, 2))):
        tiers = draw(st.lists(st.tuples(st.sampled_from([1000, 10_000, 20_000, 30_000]), st.integers(1, 8000)),
                              min_size=1, max_size=3))
        running = draw(st.booleans()) or index == 0
        activities.append(FullReductionActivity(
            f"act{index}", f"activity {index}", tuple(tiers), draw(scope_strategy),
            NOW - HOUR if running else NOW + HOUR, NOW + 2 * HOUR))
    return tuple(activities)


context_strategy = st.builds(
    lambda method, free_from, permille, activities, wallet: PricingContext(
        method, DeliveryPolicy(800, free_from), now=NOW, activities=activities, wallet=wallet,
        member_discount_permille=permille),
    st.sampled_from(["express", "pickup"]), st.sampled_from([0, 9900, 30_000]), st.sampled_from([1000, 950, 800, 0]),  # 0: free, down to the 1-fen minimum
    activities_strategy(), wallet_strategy())


def assert_adds_up(quote: pricing.Quote, context: PricingContext) -> None:
    assert sum(line.discount_fen for line in quote.lines) == quote.discount_fen
    assert sum(adjustment.amount_fen for adjustment in quote.adjustments) == quote.discount_fen
    assert all(adjustment.amount_fen > 0 for adjustment in quote.adjustments)
    assert all(line.payable_fen == line.subtotal_fen - line.discount_fen >= 0 for line in quote.lines)
    assert quote.payable_fen == quote.goods_fen - quote.discount_fen + quote.delivery_fee_fen
    assert quote.goods_fen - quote.discount_fen >= pricing.MIN_PAYABLE_FEN  # every generated price >= 1 fen
    unused = [coupon.coupon_id for coupon in context.wallet if coupon.status == "unused"]
    assert [outcome.coupon_id for outcome in quote.coupons] == unused
    applied = {adjustment.code: adjustment.amount_fen for adjustment in quote.adjustments if adjustment.kind == "coupon"}
    assert {o.coupon_id: o.amount_fen for o in quote.coupons if o.applied} == applied
    for outcome in quote.coupons:
        if not outcome.applied:
            assert outcome.amount_fen == 0 and outcome.reason in coupons.REASON_CODES and outcome.reason_text


# --- an independent brute force ------------------------------------------------------------------

def _kind(offer) -> str:
    return promotions.ACTIVITY_FULL_REDUCTION if isinstance(offer, FullReductionActivity) else f"coupon:{offer.terms.kind}"


def _legal(offers) -> bool:
    groups = [offer.terms.stack_group for offer in offers if isinstance(offer, WalletCoupon)]
    if len(groups) != len(set(groups)):
        return False
    return all(promotions.stacks(_kind(a), _kind(b)) for a, b in itertools.combinations(offers, 2))


def _apply(payables: list[int], indexes: list[int], wanted: int) -> list[int]:
    in_scope = sum(payables[i] for i in indexes)
    amount = max(0, min(wanted, in_scope, sum(payables) - 1))
    shares = apportion(amount, [payables[i] for i in indexes])
    payables = list(payables)
    for i, share in zip(indexes, shares):
        payables[i] -= share
    return payables


def brute_force_lowest_payable(items: list[Item], context: PricingContext) -> int:
    """Every activity (or none) x every subset of usable coupons that is legal, applied in the
    documented order; the lowest payable."""
    payables = [item.price_fen * item.quantity for item in items]
    everyone = list(range(len(items)))
    payables = _apply(payables, everyone, sum(payables) * (1000 - context.member_discount_permille) // 1000)
    usable = [c for c in context.wallet if c.status == "unused" and c.valid_from <= NOW < c.valid_to]
    running = [a for a in context.activities if a.starts_at <= NOW < a.ends_at]

    def order(offer):
        if isinstance(offer, FullReductionActivity):
            return (1, 0, "")
        return (promotions.APPLICATION_ORDER.index(_kind(offer)), -offer.terms.effective_threshold_fen,
                offer.coupon_id)

    best = None
    for activity in [None] + running:
        for size in range(len(usable) + 1):
            for chosen in itertools.combinations(usable, size):
                offers = sorted(([activity] if activity else []) + list(chosen), key=order)
                if not _legal(offers):
                    continue
                state = list(payables)
                for offer in offers:
                    the_scope = offer.scope if isinstance(offer, FullReductionActivity) else offer.terms.scope
                    indexes = [i for i, item in enumerate(items) if the_scope.covers(item.product_id, item.category_path)]
                    in_scope = sum(state[i] for i in indexes)
                    value = offer.value_fen(in_scope) if isinstance(offer, FullReductionActivity) \
                        else offer.terms.value_fen(in_scope)
                    state = _apply(state, indexes, value)
                goods = sum(state)
                payable = goods + pricing.delivery_fee_fen(goods, context)
                best = payable if best is None else min(best, payable)
    return best


# --- properties ---------------------------------------------------------------------------------

@PROPERTIES
@given(items=items_strategy, context=context_strategy)
def test_the_fen_always_add_up(items, context):
    assert_adds_up(pricing.price(items, context), context)


@PROPERTIES
@given(items=items_strategy, context=context_strategy)
def test_the_chosen_combination_is_the_cheapest_legal_one(items, context):
    quote = pricing.price(items, context)
    assert quote.payable_fen == brute_force_lowest_payable(items, context)
    chosen = [c for c in context.wallet if c.coupon_id in quote.applied_coupon_ids]
    activity = [a for a in context.activities if a.activity_id in {adj.code for adj in quote.adjustments
                                                                     if adj.kind == "full_reduction"}]
    assert _legal(activity + chosen)


@PROPERTIES
@given(items=items_strategy, context=context_strategy, data=st.data())
def test_an_explicit_choice_is_never_cheaper_than_the_best(items, context, data):
    best = pricing.price(items, context)
    ids = [c.coupon_id for c in context.wallet]
    chosen = tuple(data.draw(st.lists(st.sampled_from(ids), unique=True, max_size=3))) if ids else ()
    try:
        explicit = pricing.price(items, PricingContext(**{**vars(context), "coupon_ids": chosen}))
    except (CouponNotApplicable, CouponsDoNotStack):
        return
    assert set(explicit.applied_coupon_ids) == set(chosen)
    assert explicit.payable_fen >= best.payable_fen
    assert_adds_up(explicit, context)
    # the best choice, made explicit, prices the same
    again = pricing.price(items, PricingContext(**{**vars(context), "coupon_ids": best.applied_coupon_ids}))
    assert (again.payable_fen, again.adjustments) == (best.payable_fen, best.adjustments)


@PROPERTIES
@given(items=items_strategy, context=context_strategy, seed=st.integers(0, 2 ** 16))
def test_the_choice_is_deterministic_whatever_the_input_order(items, context, seed):
    first = pricing.price(items, context)
    assert pricing.price(items, context) == first
    shuffled_wallet, shuffled_activities = list(context.wallet), list(context.activities)
    random.Random(seed).shuffle(shuffled_wallet)
    random.Random(seed + 1).shuffle(shuffled_activities)
    shuffled = PricingContext(**{**vars(context), "wallet": tuple(shuffled_wallet),
                                 "activities": tuple(shuffled_activities)})
    other = pricing.price(items, shuffled)
    assert (other.payable_fen, other.adjustments, other.lines) == (first.payable_fen, first.adjustments, first.lines)
    assert sorted(other.coupons, key=lambda o: o.coupon_id) == sorted(first.coupons, key=lambda o: o.coupon_id)
