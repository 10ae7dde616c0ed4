"""Coupons and full-reduction activities in pricing (issue 13): tables of cases.

The order used by most cases: an apple box (fruit, ¥150) and milk (dairy, ¥80), goods ¥230.
Stacking rules under test are those of domain/promotions.py: one activity, one coupon per stack
group, activity x full-reduction coupon and discount x discount do not stack, application order
member level > activity > full-reduction > discount > no-threshold coupons, 1-fen minimum.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.domain import coupons, pricing, promotions
from chalicelib.domain.coupons import (CouponNotApplicable, CouponNotFound, CouponOutcome, CouponScope,
                                       CouponsDoNotStack, CouponTerms, FullReductionActivity, WalletCoupon)
from chalicelib.domain.pricing import Item, PricingContext

NOW = datetime(2025, 6, 18, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
FRUIT = ("food", "fruit")
DAIRY = ("food", "dairy")


def item(sku: str, price_fen: int, category_path: tuple[str, ...] = FRUIT, quantity: int = 1) -> Item:
    return Item(sku_id=sku, product_id=f"p-{sku}", name=sku, specs={}, price_fen=price_fen, quantity=quantity,
                category_path=category_path)


APPLE, MILK = item("apple", 15000, FRUIT), item("milk", 8000, DAIRY)
ORDER = [APPLE, MILK]


def scope(categories=(), products=(), excluded=()) -> CouponScope:
    return CouponScope(frozenset(categories), frozenset(products), frozenset(excluded))


def coupon(coupon_id: str, kind: str, *, threshold=0, off=0, rate=0, cap=0, scope_=CouponScope(), group="default",
           status="unused", valid_from=NOW - DAY, valid_to=NOW + 7 * DAY, name=None) -> WalletCoupon:
    terms = CouponTerms(kind, threshold_fen=threshold, off_fen=off, rate_permille=rate, cap_fen=cap, scope=scope_,
                        stack_group=group)
    return WalletCoupon(coupon_id, f"tpl-{coupon_id}", name or coupon_id, terms, status, valid_from, valid_to)


def activity(activity_id: str = "act-200-20", tiers=((20000, 2000),), scope_=CouponScope(),
             starts_at=NOW - DAY, ends_at=NOW + DAY) -> FullReductionActivity:
    return FullReductionActivity(activity_id, "满200减20", tuple(tiers), scope_, starts_at, ends_at)


FRUIT_90_CAP_10 = coupon("fruit-9zhe", "discount", rate=900, cap=1000, scope_=scope(["fruit"]))
NO_THRESHOLD_5 = coupon("nt-5", "no_threshold", off=500, group="platform")
FULL_200_30 = coupon("fr-200-30", "full_reduction", threshold=20000, off=3000)
FULL_200_10 = coupon("fr-200-10", "full_reduction", threshold=20000, off=1000)
FULL_300_50 = coupon("fr-300-50", "full_reduction", threshold=30000, off=5000)


def quote(items=ORDER, *, method="pickup", activities=(), wallet=(), coupon_ids=None, member_permille=1000):
    return pricing.price(list(items), PricingContext(method, now=NOW, activities=tuple(activities),
                                                     wallet=tuple(wallet), coupon_ids=coupon_ids,
                                                     member_discount_permille=member_permille))


def outcome(q: pricing.Quote, coupon_id: str) -> CouponOutcome:
    return next(o for o in q.coupons if o.coupon_id == coupon_id)


def assert_adds_up(q: pricing.Quote) -> None:
    assert sum(line.discount_fen for line in q.lines) == q.discount_fen == sum(a.amount_fen for a in q.adjustments)
    assert all(line.payable_fen == line.subtotal_fen - line.discount_fen >= 0 for line in q.lines)
    assert q.payable_fen == q.goods_fen - q.discount_fen + q.delivery_fee_fen >= 1


# --- scopes and terms --------------------------------------------------------------------------

@pytest.mark.parametrize("the_scope, product_id, path, covered", [
    (scope(), "p-x", (), True),  # no categories and no products: the whole store
    (scope(["food"]), "p-apple", ("food", "fruit", "apples"), True),  # a category covers its descendants
    (scope(["fruit"]), "p-apple", ("food", "fruit"), True),  # ... and itself
    (scope(["fruit"]), "p-milk", ("food", "dairy"), False),
    (scope(["fruit"]), "p-food-gift", ("food",), False),  # not the ancestors of the category
    (scope(products=["p-milk"]), "p-milk", ("food", "dairy"), True),
    (scope(["fruit"], ["p-milk"]), "p-milk", ("food", "dairy"), True),  # products or categories
    (scope(["fruit"], excluded=["p-apple"]), "p-apple", ("food", "fruit"), False),  # excluded wins
    (scope(excluded=["p-apple"]), "p-apple", ("food", "fruit"), False),  # even from the whole store
    (scope(products=["p-apple"], excluded=["p-apple"]), "p-apple", (), False),
])
def test_scope_covers(the_scope, product_id, path, covered):
    assert the_scope.covers(product_id, path) is covered


@pytest.mark.parametrize("terms, in_scope_fen, value", [
    (CouponTerms("full_reduction", threshold_fen=20000, off_fen=2000), 19999, 0),
    (CouponTerms("full_reduction", threshold_fen=20000, off_fen=2000), 20000, 2000),
    (CouponTerms("discount", rate_permille=900), 12345, 1234),  # 9折: 10% off, rounded down
    (CouponTerms("discount", rate_permille=900, cap_fen=1000), 15000, 1000),  # capped
    (CouponTerms("discount", rate_permille=900, threshold_fen=10000), 9999, 0),  # optional minimum
    (CouponTerms("discount", rate_permille=999), 999, 0),  # worth less than a fen
    (CouponTerms("no_threshold", off_fen=500), 300, 300),  # never more than the in-scope payable
    (CouponTerms("no_threshold", off_fen=500, threshold_fen=99999), 600, 500),  # threshold ignored
    (CouponTerms("no_threshold", off_fen=500), 0, 0),
])
def test_coupon_value(terms, in_scope_fen, value):
    assert terms.value_fen(in_scope_fen) == value


def test_terms_refuse_impossible_values():
    with pytest.raises(ValueError):
        CouponTerms("percent_off")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CouponTerms("discount", rate_permille=1200)
    with pytest.raises(ValueError):
        CouponTerms("full_reduction", threshold_fen=-1, off_fen=100)


def test_activity_takes_the_best_reached_tier():
    tiers = activity(tiers=((30000, 4000), (20000, 2000), (50000, 3000)))
    assert (tiers.value_fen(19999), tiers.value_fen(25000), tiers.value_fen(60000)) == (0, 2000, 4000)


# --- pricing cases: kind x threshold x scope x stacking -------------------------------------

CASES = [
    # name, activities, wallet, applied coupons, adjustments [(kind, code, amount)], payable
    ("activity 满200减20 + 9折 fruit coupon capped at ¥10 + 无门槛¥5 in another group",
     [activity()], [FRUIT_90_CAP_10, NO_THRESHOLD_5], ("fruit-9zhe", "nt-5"),
     [("full_reduction", "act-200-20", 2000), ("coupon", "fruit-9zhe", 1000), ("coupon", "nt-5", 500)], 19500),
    ("one coupon per stack group: the fruit coupon beats ¥5 in the same group",
     [], [FRUIT_90_CAP_10, coupon("nt-5-default", "no_threshold", off=500)], ("fruit-9zhe",),
     [("coupon", "fruit-9zhe", 1000)], 22000),
    ("a full-reduction coupon does not stack with the activity: the larger one wins (coupon)",
     [activity()], [FULL_200_30], ("fr-200-30",), [("coupon", "fr-200-30", 3000)], 20000),
    ("a full-reduction coupon does not stack with the activity: the larger one wins (activity)",
     [activity()], [FULL_200_10], (), [("full_reduction", "act-200-20", 2000)], 21000),
    ("threshold not reached: 满300 on ¥230", [], [FULL_300_50], (), [], 23000),
    ("threshold in scope only: 满100 on fruit is reached by the ¥150 apple box",
     [], [coupon("fruit-100-15", "full_reduction", threshold=10000, off=1500, scope_=scope(["fruit"]))],
     ("fruit-100-15",), [("coupon", "fruit-100-15", 1500)], 21500),
    ("category with descendants: a food coupon covers fruit and dairy",
     [], [coupon("food-9zhe", "discount", rate=900, scope_=scope(["food"]))], ("food-9zhe",),
     [("coupon", "food-9zhe", 2300)], 20700),
    ("excluded product: a whole-store 9折 except the apple box", [],
     [coupon("no-apple", "discount", rate=900, scope_=scope(excluded=["p-apple"]))], ("no-apple",),
     [("coupon", "no-apple", 800)], 22200),
    ("two discount coupons in different groups never compound: the better one",
     [], [FRUIT_90_CAP_10, coupon("all-95", "discount", rate=950, group="platform")], ("all-95",),
     [("coupon", "all-95", 1150)], 21850),
    ("full-reduction before discount: 满200减30 then 9折 on what is left",
     [], [FULL_200_30, coupon("all-9zhe", "discount", rate=900, group="platform")], ("fr-200-30", "all-9zhe"),
     [("coupon", "fr-200-30", 3000), ("coupon", "all-9zhe", 2000)], 18000),
    ("an activity skipped when a coupon's minimum would no longer be reached after it",
     [activity()], [coupon("min-220-8zhe", "discount", rate=800, threshold=22000)], ("min-220-8zhe",),
     [("coupon", "min-220-8zhe", 4600)], 18400),
    ("activity scoped to dairy: 满50减5 on the milk only",
     [activity("dairy-50-5", ((5000, 500),), scope(["dairy"]))], [], (),
     [("full_reduction", "dairy-50-5", 500)], 22500),
]


@pytest.mark.parametrize("name, activities, wallet, applied, adjustments, payable", CASES, ids=[c[0] for c in CASES])
def test_pricing_cases(name, activities, wallet, applied, adjustments, payable):
    q = quote(activities=activities, wallet=wallet)
    assert q.applied_coupon_ids == applied
    assert [(a.kind, a.code, a.amount_fen) for a in q.adjustments] == adjustments
    assert q.payable_fen == payable
    assert [o.coupon_id for o in q.coupons if o.applied] == [w.coupon_id for w in wallet if w.coupon_id in applied]
    assert all(o.amount_fen == next(a.amount_fen for a in q.adjustments if a.code == o.coupon_id)
               for o in q.coupons if o.applied)
    assert_adds_up(q)


def test_each_discount_is_apportioned_to_its_own_lines():
    q = quote(activities=[activity()], wallet=[FRUIT_90_CAP_10, NO_THRESHOLD_5])
    apple, milk = q.lines
    # activity 2000 over 15000:8000 -> 1304 + 696 (largest remainder); fruit coupon 1000 on the apple only;
    # ¥5 over what is left (12696:7304) -> 317 + 183
    assert (apple.discount_fen, milk.discount_fen) == (1304 + 1000 + 317, 696 + 183)
    assert q.adjustments[0].description == "满200减20（满¥200.00减¥20.00）"


def test_member_discount_comes_first_and_thresholds_see_what_is_left():
    q = quote(activities=[activity()], member_permille=850)  # ¥230 x 0.85 = ¥195.50: 满200 no longer reached
    assert [(a.kind, a.code, a.amount_fen, a.description) for a in q.adjustments] == [
        ("member_level", "normal", 3450, "会员8.5折")]
    assert quote(member_permille=1000).adjustments == ()


def test_delivery_fee_is_on_the_discounted_goods_and_counts_in_the_choice():
    # ¥100 by express is free from ¥99; a ¥2 coupon would cost ¥8 of shipping, so it is left out.
    q = quote([item("book", 10000)], method="express", wallet=[coupon("nt-2", "no_threshold", off=200)])
    assert (q.applied_coupon_ids, q.delivery_fee_fen, q.payable_fen) == ((), 0, 10000)
    assert outcome(q, "nt-2").reason == coupons.NOT_THE_BEST
    forced = quote([item("book", 10000)], method="express", wallet=[coupon("nt-2", "no_threshold", off=200)],
                   coupon_ids=("nt-2",))
    assert (forced.delivery_fee_fen, forced.payable_fen) == (800, 10600)


# --- the 1-fen minimum ------------------------------------------------------------------------------

def test_discounts_stop_at_one_fen_payable():
    q = quote([item("sticker", 300)], wallet=[coupon("nt-5", "no_threshold", off=500)])
    assert (q.discount_fen, q.payable_fen, q.adjustments[0].amount_fen) == (299, 1, 299)
    assert outcome(q, "nt-5") == CouponOutcome("nt-5", True, 299)


def test_the_last_discount_gives_way_and_a_coupon_with_nothing_left_is_not_used():
    # same kind and threshold: applied by coupon_id, so a-5 first, then b-2
    wallet = [coupon("b-2", "no_threshold", off=200), coupon("a-5", "no_threshold", off=500, group="platform")]
    q = quote([item("sticker", 300)], wallet=wallet)
    assert (q.applied_coupon_ids, q.payable_fen) == (("a-5",), 1)
    assert outcome(q, "b-2").reason == coupons.NOTHING_TO_DISCOUNT
    both = quote([item("sticker", 600)], wallet=wallet, coupon_ids=("b-2", "a-5"))
    assert [(a.code, a.amount_fen) for a in both.adjustments] == [("a-5", 500), ("b-2", 99)] and both.payable_fen == 1
    with pytest.raises(CouponNotApplicable) as raised:
        quote([item("sticker", 300)], wallet=wallet, coupon_ids=("b-2", "a-5"))
    assert (raised.value.coupon_id, raised.value.reason) == ("b-2", coupons.NOTHING_TO_DISCOUNT)


def test_member_discount_respects_the_minimum_too():
    q = quote([item("sticker", 300)], member_permille=0)
    assert q.payable_fen == 1 and q.adjustments[0].amount_fen == 299


# --- reasons for the coupons not applied -----------------------------------------------------------

def test_a_reason_for_every_unused_coupon_and_none_for_locked_or_used():
    wallet = [
        FRUIT_90_CAP_10,
        coupon("same-group", "no_threshold", off=300),
        FULL_200_10,
        FULL_300_50,
        coupon("dairy-only", "no_threshold", off=300, scope_=scope(["dairy"]), group="d"),
        coupon("office", "no_threshold", off=300, scope_=scope(["office"]), group="o"),
        coupon("later", "no_threshold", off=300, group="l", valid_from=NOW + DAY),
        coupon("old", "no_threshold", off=300, group="x", valid_to=NOW),
        coupon("held", "no_threshold", off=300, group="h", status="locked"),
        coupon("spent", "no_threshold", off=300, group="s", status="used"),
        coupon("second-discount", "discount", rate=990, group="q"),
    ]
    q = quote(activities=[activity()], wallet=wallet)
    assert q.applied_coupon_ids == ("fruit-9zhe", "dairy-only")
    reasons = {o.coupon_id: (o.reason, o.conflicts_with) for o in q.coupons if not o.applied}
    assert reasons == {
        "same-group": (coupons.DOES_NOT_STACK, ("fruit-9zhe",)),
        "fr-200-10": (coupons.DOES_NOT_STACK, ("act-200-20", "fruit-9zhe")),
        "fr-300-50": (coupons.THRESHOLD_NOT_REACHED, ()),
        "office": (coupons.OUT_OF_SCOPE, ()),
        "later": (coupons.NOT_YET_VALID, ()),
        "old": (coupons.EXPIRED, ()),
        "second-discount": (coupons.DOES_NOT_STACK, ("fruit-9zhe",)),
    }
    assert {reason for reason, _ in reasons.values()} <= set(coupons.REASON_CODES)
    assert outcome(q, "fr-300-50").reason_text == "适用商品满¥300.00可用，还差¥70.00"
    assert outcome(q, "fr-200-10").reason_text == "不可与「满200减20」、「fruit-9zhe」同时使用"
    assert all(o.amount_fen == 0 and o.reason_text for o in q.coupons if not o.applied)
    assert all(o.reason is None and o.reason_text is None for o in q.coupons if o.applied)


def test_a_threshold_missed_only_after_the_chosen_discounts_is_named():
    # 满200减30 comes first (the higher threshold); 满180减10 in another group then sees ¥170.
    wallet = [FULL_200_30, coupon("fr-180-10", "full_reduction", threshold=18000, off=1000, group="b")]
    q = quote([item("apple", 20000)], wallet=wallet)
    assert q.applied_coupon_ids == ("fr-200-30",)
    assert outcome(q, "fr-180-10").reason == coupons.THRESHOLD_NOT_REACHED
    assert outcome(q, "fr-180-10").reason_text == "适用商品满¥180.00可用，还差¥10.00"
    # the higher threshold first lets both be reached where the other order would not
    both = quote([item("apple", 20000)], wallet=[FULL_200_30, coupon("fr-150-10", "full_reduction",
                                                                     threshold=15000, off=1000, group="b")])
    assert both.applied_coupon_ids == ("fr-200-30", "fr-150-10") and both.payable_fen == 16000


# --- an explicit choice ------------------------------------------------------------------------------

def test_explicit_coupons_are_used_exactly_and_the_others_are_not_selected():
    q = quote(activities=[activity()], wallet=[FRUIT_90_CAP_10, NO_THRESHOLD_5], coupon_ids=("nt-5",))
    assert q.applied_coupon_ids == ("nt-5",)
    assert [a.code for a in q.adjustments] == ["act-200-20", "nt-5"]
    assert outcome(q, "fruit-9zhe").reason == coupons.NOT_SELECTED
    none = quote(wallet=[FRUIT_90_CAP_10], coupon_ids=())
    assert none.applied_coupon_ids == () and outcome(none, "fruit-9zhe").reason == coupons.NOT_SELECTED


def test_an_explicit_full_reduction_coupon_gives_up_the_activity():
    q = quote(activities=[activity()], wallet=[FULL_200_10], coupon_ids=("fr-200-10",))
    assert [(a.kind, a.code) for a in q.adjustments] == [("coupon", "fr-200-10")] and q.payable_fen == 22000


@pytest.mark.parametrize("wallet, chosen, conflicting", [
    ([FRUIT_90_CAP_10, coupon("nt-3", "no_threshold", off=300)], ("fruit-9zhe", "nt-3"), ("fruit-9zhe", "nt-3")),
    ([FRUIT_90_CAP_10, coupon("all-95", "discount", rate=950, group="b"), NO_THRESHOLD_5],
     ("nt-5", "fruit-9zhe", "all-95"), ("fruit-9zhe", "all-95")),
])
def test_an_explicit_illegal_combination_names_the_coupons(wallet, chosen, conflicting):
    with pytest.raises(CouponsDoNotStack) as raised:
        quote(wallet=wallet, coupon_ids=chosen)
    assert raised.value.coupon_ids == conflicting
    assert (raised.value.status, raised.value.code) == (409, "coupons_do_not_stack")
    assert [d["coupon_id"] for d in raised.value.details] == list(conflicting)


def test_explicit_unknown_coupons_are_not_found():
    with pytest.raises(CouponNotFound) as raised:
        quote(wallet=[FRUIT_90_CAP_10], coupon_ids=("fruit-9zhe", "someone-elses", "made-up"))
    assert raised.value.coupon_ids == ("someone-elses", "made-up")
    assert (raised.value.status, raised.value.code) == (404, "coupon_not_found")


@pytest.mark.parametrize("the_coupon, reason", [
    (coupon("held", "no_threshold", off=300, status="locked"), coupons.LOCKED),
    (coupon("spent", "no_threshold", off=300, status="used"), coupons.USED),
    (coupon("old", "no_threshold", off=300, valid_to=NOW), coupons.EXPIRED),
    (coupon("later", "no_threshold", off=300, valid_from=NOW + timedelta(seconds=1)), coupons.NOT_YET_VALID),
    (coupon("office", "no_threshold", off=300, scope_=scope(["office"])), coupons.OUT_OF_SCOPE),
    (FULL_300_50, coupons.THRESHOLD_NOT_REACHED),
    (coupon("dairy-100", "full_reduction", threshold=10000, off=500, scope_=scope(["dairy"])),
     coupons.THRESHOLD_NOT_REACHED),
])
def test_an_explicit_coupon_that_cannot_apply_says_why(the_coupon, reason):
    with pytest.raises(CouponNotApplicable) as raised:
        quote(wallet=[the_coupon], coupon_ids=(the_coupon.coupon_id,))
    assert (raised.value.coupon_id, raised.value.reason) == (the_coupon.coupon_id, reason)
    assert (raised.value.status, raised.value.code) == (409, "coupon_not_applicable")
    assert raised.value.details[0]["reason"] == reason


def test_explicit_duplicates_count_once():
    q = quote(wallet=[NO_THRESHOLD_5], coupon_ids=("nt-5", "nt-5"))
    assert q.applied_coupon_ids == ("nt-5",) and q.payable_fen == 22500


# --- plumbing ----------------------------------------------------------------------------------------

def test_activities_outside_their_window_do_not_apply():
    for act in (activity(starts_at=NOW + DAY, ends_at=NOW + 2 * DAY), activity(starts_at=NOW - 2 * DAY, ends_at=NOW)):
        assert quote(activities=[act]).adjustments == ()


def test_coupons_and_activities_need_the_time():
    with pytest.raises(ValueError):
        pricing.price(ORDER, PricingContext("pickup", wallet=(NO_THRESHOLD_5,)))
    assert pricing.price(ORDER, PricingContext("pickup")).coupons == ()  # nothing to time: fine without


def test_the_stacking_matrix_is_symmetric_and_defaults_to_stacking():
    assert not promotions.stacks(promotions.COUPON_FULL_REDUCTION, promotions.ACTIVITY_FULL_REDUCTION)
    assert not promotions.stacks(promotions.ACTIVITY_FULL_REDUCTION, promotions.COUPON_FULL_REDUCTION)
    assert promotions.stacks(promotions.ACTIVITY_FULL_REDUCTION, promotions.COUPON_DISCOUNT)
    assert promotions.stacks(promotions.MEMBER_LEVEL, promotions.COUPON_FULL_REDUCTION)


def test_ties_prefer_fewer_coupons_then_the_one_expiring_first():
    late = coupon("b-late", "no_threshold", off=500, valid_to=NOW + 9 * DAY)
    soon = coupon("c-soon", "no_threshold", off=500, valid_to=NOW + 2 * DAY)
    same = coupon("a-same", "no_threshold", off=500, valid_to=NOW + 9 * DAY)
    assert quote(wallet=[late, soon, same]).applied_coupon_ids == ("c-soon",)
    assert quote(wallet=[late, same]).applied_coupon_ids == ("a-same",)
    # ¥1 item: one ¥5 coupon already brings it to the 1-fen minimum, a second would add nothing
    two_groups = [coupon("x", "no_threshold", off=500), coupon("y", "no_threshold", off=500, group="g")]
    assert len(quote([item("gum", 100)], wallet=two_groups).applied_coupon_ids) == 1


def test_the_search_bound_keeps_the_most_valuable_coupons():
    wallet = [coupon(f"c{i:02d}", "no_threshold", off=100 + i, group=f"g{i}") for i in range(40)]
    q = quote([item("tv", 500_000)], wallet=wallet)
    kept = 10  # 2**10 = 1024 = MAX_COUPON_COMBINATIONS with one coupon per group
    assert promotions.MAX_COUPON_COMBINATIONS == 2 ** kept
    assert sorted(q.applied_coupon_ids) == [f"c{i:02d}" for i in range(40 - kept, 40)]
    assert {o.reason for o in q.coupons if not o.applied} == {coupons.NOT_THE_BEST}
