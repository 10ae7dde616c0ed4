"""Promotions of one order: which full-reduction activity and which coupons apply, chosen together.

`pricing.price` runs the member-level discount first, then asks `plan_promotions` for the
activity and coupon discounts, applies them in the order given, then (later) points, then the
delivery fee on the discounted goods. The choice lives here because the pieces interact: a
discount coupon takes a share of what is left after the activity, a threshold may stop being
reached once something else came off, and a cheaper basket may lose free shipping.

Stacking rules (data: STACKING, APPLICATION_ORDER; change them here and only here):

1. At most one full-reduction activity per order; which one (or none) is part of the choice.
2. At most one coupon per `stack_group`. Templates default to group "default", so by default an
   order takes one coupon; a template in another group (say "shipping") can add one more.
3. STACKING forbids some kinds together in one order, whatever their scopes; any pair not listed
   combines:
   - activity:full_reduction x coupon:full_reduction: never "spend X save Y" twice on the same
     money. The search weighs the activity against such a coupon (whichever leaves the lower
     payable); a buyer who explicitly picks such a coupon gives up the activity.
   - coupon:discount x coupon:discount (different groups): percentage discounts never compound.
   The member-level discount combines with everything.
4. APPLICATION_ORDER: member level, activity, full-reduction coupons, discount coupons,
   no-threshold coupons (same kind: the higher threshold first, then coupon_id). Thresholds are checked on the payable at the
   coupon's turn (so a full-reduction coupon sees the amount before other coupons), and a
   discount coupon takes its rate of what is still payable, so fixed amounts come off first
   and the rate never applies to money already given back.
5. Minimum payable: WeChat Pay takes at least 1 fen, so the activity and coupons (and the member
   discount, in pricing) never bring the order's discounted goods below pricing.MIN_PAYABLE_FEN: the
   discount that would is reduced, which makes the last one applied give way. Refusing a valid
   coupon would be worse for the buyer; and since the search compares the capped amounts, a
   coupon that would only be cut to nothing is simply not chosen.

Choosing (coupon_ids None): every legal combination of (one running activity that is reached,
or none) x (at most one usable coupon per stack group) is priced, delivery fee included, and the
lowest payable_fen wins; ties: fewer coupons, then the coupons expiring first (sorted valid_to),
then coupon ids, then an activity over none (the larger, then activity_id). The search is exact:
a depth-first walk over the candidates in application order, sharing prefixes, never adding a
coupon that would take nothing off (a combination without it is as cheap and uses fewer coupons).
Its bound: at most MAX_CANDIDATE_COUPONS usable coupons (best standalone value first, i.e. what
each takes off alone after the member discount) and at most MAX_COUPON_COMBINATIONS coupon
combinations (the product over stack groups of candidates + 1; the lowest-valued candidates are
dropped until it fits), times the running activities + 1. A realistic wallet holds fewer than 30
unused coupons in a few groups, where the search is exact over the whole wallet.

Explicit choice (coupon_ids given): exactly those coupons, or a domain error: CouponNotFound
(not the user's), CouponNotApplicable (locked, used, expired, not yet valid, out of scope,
threshold not reached or nothing to take off at its turn), CouponsDoNotStack (same group or a
forbidden pair). The activity is then the best one that stacks with them (or none).

Each of the user's unused coupons gets a CouponOutcome with a reason code (coupons.REASON_CODES).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, Sequence

from chalicelib.domain.coupons import (DOES_NOT_STACK, EXPIRED, LOCKED, NOT_SELECTED, NOT_THE_BEST, NOT_YET_VALID,
                                       NOTHING_TO_DISCOUNT, OUT_OF_SCOPE, THRESHOLD_NOT_REACHED, USED,
                                       CouponNotApplicable, CouponNotFound, CouponOutcome, CouponsDoNotStack,
                                       CouponScope, FullReductionActivity, WalletCoupon)
from chalicelib.domain.money import apportion, format_yuan
from chalicelib.domain.pricing import room_above_minimum

MEMBER_LEVEL = "member_level"
ACTIVITY_FULL_REDUCTION = "activity:full_reduction"
COUPON_FULL_REDUCTION = "coupon:full_reduction"
COUPON_DISCOUNT = "coupon:discount"
COUPON_NO_THRESHOLD = "coupon:no_threshold"

APPLICATION_ORDER: tuple[str, ...] = (MEMBER_LEVEL, ACTIVITY_FULL_REDUCTION, COUPON_FULL_REDUCTION,
                                      COUPON_DISCOUNT, COUPON_NO_THRESHOLD)

# Pairs of kinds that may not be in one order (either order of the pair); anything else combines.
STACKING: dict[tuple[str, str], bool] = {
    (ACTIVITY_FULL_REDUCTION, COUPON_FULL_REDUCTION): False,
    (COUPON_DISCOUNT, COUPON_DISCOUNT): False,
}

MAX_CANDIDATE_COUPONS = 30
MAX_COUPON_COMBINATIONS = 1024

DeliveryFee = Callable[[int], int]  # discounted goods fen -> delivery fee fen


def stacks(kind: str, other_kind: str) -> bool:
    """Whether two kinds may be in one order (STACKING; default yes)."""
    return STACKING.get((kind, other_kind), STACKING.get((other_kind, kind), True))


def spread(payables: tuple[int, ...], line_indexes: tuple[int, ...], amount_fen: int) -> tuple[int, ...]:
    """Take `amount_fen` off the given lines in proportion to what they pay now (largest remainder).
    The same arithmetic as pricing's _apply_discount, so the plan's amounts are what pricing applies."""
    shares = apportion(amount_fen, [payables[index] for index in line_indexes])
    updated = list(payables)
    for index, share in zip(line_indexes, shares):
        updated[index] -= share
    return tuple(updated)


@dataclass(frozen=True)
class BasketLine:
    """What the promotions need of a quote line: what it is (for scopes) and what it pays now."""
    product_id: str
    category_path: tuple[str, ...]
    payable_fen: int


@dataclass(frozen=True)
class PlannedDiscount:
    """One discount for pricing to apply, in order: an adjustment shared by `line_indexes`."""
    kind: str  # adjustment kind: full_reduction (code = activity_id) or coupon (code = coupon_id)
    code: str
    amount_fen: int
    description: str
    line_indexes: tuple[int, ...]


@dataclass(frozen=True)
class PromotionPlan:
    discounts: tuple[PlannedDiscount, ...] = ()
    coupons: tuple[CouponOutcome, ...] = ()


def plan_promotions(lines: Sequence[BasketLine], *, now: datetime | None,
                    activities: Sequence[FullReductionActivity] = (), wallet: Sequence[WalletCoupon] = (),
                    coupon_ids: Sequence[str] | None = None,
                    delivery_fee: DeliveryFee = lambda goods_fen: 0) -> PromotionPlan:
    """The activity and coupon discounts for these lines (as discounted so far), and an outcome
    for each unused coupon of the wallet. See the module docstring for the rules."""
    if not activities and not wallet and not coupon_ids:
        return PromotionPlan()
    if now is None:
        raise ValueError("pricing activities or coupons needs the time: PricingContext.now")
    basket = _Basket(tuple(lines), delivery_fee)
    running = [offer for offer in (_activity_offer(activity, basket) for activity in activities
                                   if activity.is_running(now)) if basket.standalone_fen(offer) > 0]
    running.sort(key=lambda offer: (-basket.standalone_fen(offer), offer.ref))
    if coupon_ids is None:
        combination = _best_combination(basket, running, _candidates(basket, wallet, now))
        unchosen_reason = NOT_THE_BEST
    else:
        combination = _explicit_combination(basket, running, wallet, tuple(dict.fromkeys(coupon_ids)), now)
        unchosen_reason = NOT_SELECTED
    return PromotionPlan(discounts=_planned_discounts(combination),
                         coupons=_outcomes(basket, wallet, combination, now, unchosen_reason))


# --- offers: an activity or a coupon, as the search sees it ---------------------------------------


@dataclass(frozen=True)
class _Offer:
    stack_kind: str
    ref: str  # activity_id or coupon_id
    name: str
    line_indexes: tuple[int, ...]  # the lines in its scope
    activity: FullReductionActivity | None = None
    coupon: WalletCoupon | None = None

    @property
    def stack_group(self) -> str | None:
        return self.coupon.terms.stack_group if self.coupon else None

    @property
    def application_key(self) -> tuple[int, int, str]:
        """APPLICATION_ORDER; within a kind the higher threshold first (checked while most is
        still payable, so both may be reached), then coupon_id."""
        threshold = self.coupon.terms.effective_threshold_fen if self.coupon else 0
        return APPLICATION_ORDER.index(self.stack_kind), -threshold, self.ref

    def value_fen(self, in_scope_payable_fen: int) -> int:
        if self.coupon is not None:
            return self.coupon.terms.value_fen(in_scope_payable_fen)
        assert self.activity is not None
        return self.activity.value_fen(in_scope_payable_fen)

    def clashes_with(self, other: _Offer) -> bool:
        same_group = self.stack_group is not None and self.stack_group == other.stack_group
        return same_group or not stacks(self.stack_kind, other.stack_kind)


def _covered(scope: CouponScope, lines: tuple[BasketLine, ...]) -> tuple[int, ...]:
    return tuple(index for index, line in enumerate(lines) if scope.covers(line.product_id, line.category_path))


def _activity_offer(activity: FullReductionActivity, basket: _Basket) -> _Offer:
    return _Offer(ACTIVITY_FULL_REDUCTION, activity.activity_id, activity.name,
                  _covered(activity.scope, basket.lines), activity=activity)


def _coupon_offer(coupon: WalletCoupon, basket: _Basket) -> _Offer:
    return _Offer(f"coupon:{coupon.terms.kind}", coupon.coupon_id, coupon.name,
                  _covered(coupon.terms.scope, basket.lines), coupon=coupon)


# --- applying offers to the payables ---------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    """One offer applied: what the lines pay after it, what it took, what its scope paid before."""
    payables: tuple[int, ...]
    amount_fen: int
    in_scope_before_fen: int


def _take(payables: tuple[int, ...], offer: _Offer) -> _Step:
    in_scope = sum(payables[index] for index in offer.line_indexes)
    amount = min(offer.value_fen(in_scope), in_scope, room_above_minimum(payables))
    after = spread(payables, offer.line_indexes, amount) if amount > 0 else payables
    return _Step(after, amount, in_scope)


@dataclass(frozen=True)
class _Combination:
    activity: _Offer | None
    coupons: tuple[_Offer, ...]  # in application order
    steps: tuple[_Step, ...]  # the activity's first (if any), then one per coupon
    payable_fen: int  # discounted goods + delivery fee

    @property
    def coupon_steps(self) -> tuple[_Step, ...]:
        return self.steps[1:] if self.activity is not None else self.steps

    @property
    def offers(self) -> tuple[_Offer, ...]:
        return ((self.activity,) if self.activity is not None else ()) + self.coupons

    def rank(self) -> tuple:
        """Lower is better: payable, then fewer coupons, the soonest expiring, coupon ids, an activity."""
        coupons = [offer.coupon for offer in self.coupons if offer.coupon is not None]
        activity_rank = (1, 0, "") if self.activity is None else (0, -self.steps[0].amount_fen, self.activity.ref)
        return (self.payable_fen, len(coupons), tuple(sorted(coupon.valid_to for coupon in coupons)),
                tuple(sorted(coupon.coupon_id for coupon in coupons)), activity_rank)


class _Basket:
    """The lines as discounted before the promotions, and how to price a combination of offers."""

    def __init__(self, lines: tuple[BasketLine, ...], delivery_fee: DeliveryFee):
        self.lines = lines
        self.base = tuple(line.payable_fen for line in lines)
        self.delivery_fee = delivery_fee
        self._standalone: dict[tuple[str, str], int] = {}

    def standalone_fen(self, offer: _Offer) -> int:
        """What the offer takes off alone; an upper bound of what it takes in any combination,
        since thresholds and rates only see less once other offers came off."""
        key = (offer.stack_kind, offer.ref)
        if key not in self._standalone:
            self._standalone[key] = _take(self.base, offer).amount_fen
        return self._standalone[key]

    def combination(self, activity: _Offer | None, coupons: tuple[_Offer, ...],
                    steps: tuple[_Step, ...]) -> _Combination:
        goods = sum(steps[-1].payables) if steps else sum(self.base)
        return _Combination(activity, coupons, steps, goods + self.delivery_fee(goods))

    def evaluate(self, activity: _Offer | None, coupons: Iterable[_Offer]) -> _Combination:
        ordered = tuple(sorted(coupons, key=lambda offer: offer.application_key))
        payables, steps = self.base, []
        for offer in ((activity,) if activity is not None else ()) + ordered:
            step = _take(payables, offer)
            steps.append(step)
            payables = step.payables
        return self.combination(activity, ordered, tuple(steps))


# --- choosing ----------------------------------------------------------------------------------


def _candidates(basket: _Basket, wallet: Sequence[WalletCoupon], now: datetime) -> list[_Offer]:
    """The coupons worth searching, in application order, trimmed to the search bound."""
    offers = [_coupon_offer(coupon, basket) for coupon in wallet if coupon.unusable_reason(now) is None]
    offers = [offer for offer in offers if basket.standalone_fen(offer) > 0]
    offers.sort(key=lambda offer: (-basket.standalone_fen(offer), offer.coupon.valid_to, offer.ref))
    offers = offers[:MAX_CANDIDATE_COUPONS]
    while _coupon_combination_count(offers) > MAX_COUPON_COMBINATIONS:
        offers.pop()  # the lowest standalone value
    return sorted(offers, key=lambda offer: offer.application_key)


def _coupon_combination_count(offers: Iterable[_Offer]) -> int:
    group_sizes: dict[str | None, int] = {}
    for offer in offers:
        group_sizes[offer.stack_group] = group_sizes.get(offer.stack_group, 0) + 1
    count = 1
    for size in group_sizes.values():
        count *= size + 1
    return count


def _best_combination(basket: _Basket, activities: list[_Offer], candidates: list[_Offer]) -> _Combination:
    """Depth-first over the candidates in application order: skip each, or take it when it stacks
    with what is taken and takes something off; every path to the end is a legal combination."""
    best = basket.combination(None, (), ())

    def walk(position: int, activity: _Offer | None, taken: tuple[_Offer, ...], steps: tuple[_Step, ...]) -> None:
        nonlocal best
        if position == len(candidates):
            combination = basket.combination(activity, taken, steps)
            if combination.rank() < best.rank():
                best = combination
            return
        walk(position + 1, activity, taken, steps)
        offer = candidates[position]
        if any(offer.clashes_with(other) for other in ((activity,) if activity else ()) + taken):
            return
        step = _take(steps[-1].payables if steps else basket.base, offer)
        if step.amount_fen > 0:
            walk(position + 1, activity, taken + (offer,), steps + (step,))

    walk(0, None, (), ())
    for activity in activities:
        walk(0, activity, (), (_take(basket.base, activity),))
    return best


def _explicit_combination(basket: _Basket, activities: list[_Offer], wallet: Sequence[WalletCoupon],
                          coupon_ids: tuple[str, ...], now: datetime) -> _Combination:
    """Exactly the chosen coupons, with the best activity that stacks with them (or none)."""
    owned = {coupon.coupon_id: coupon for coupon in wallet}
    missing = tuple(coupon_id for coupon_id in coupon_ids if coupon_id not in owned)
    if missing:
        raise CouponNotFound(missing)
    offers = [_coupon_offer(owned[coupon_id], basket) for coupon_id in coupon_ids]
    for offer in offers:
        reason = offer.coupon.unusable_reason(now) or (None if offer.line_indexes else OUT_OF_SCOPE)
        if reason is not None:
            raise CouponNotApplicable(offer.ref, reason, _reason_text(reason, offer))
    clashing = tuple(offer.ref for offer in offers
                     if any(offer.clashes_with(other) for other in offers if other is not offer))
    if clashing:
        raise CouponsDoNotStack(clashing)
    options = [None] + [activity for activity in activities
                        if not any(activity.clashes_with(offer) for offer in offers)]
    priced = [basket.evaluate(activity, offers) for activity in options]
    usable = [combination for combination in priced
              if all(step.amount_fen > 0 for step in combination.coupon_steps)]
    if not usable:
        _raise_first_not_applicable(priced[0])  # without an activity: the most any coupon can see
    return min(usable, key=_Combination.rank)


def _raise_first_not_applicable(combination: _Combination) -> None:
    for offer, step in zip(combination.coupons, combination.coupon_steps):
        if step.amount_fen == 0:
            reason = _zero_reason(offer, step)
            raise CouponNotApplicable(offer.ref, reason, _reason_text(reason, offer, step=step))
    raise AssertionError("a combination without a zero step has no coupon to blame")


def _zero_reason(offer: _Offer, step: _Step) -> str:
    """Why an offer took nothing off at its turn."""
    reached = offer.coupon is None or offer.coupon.terms.reaches_threshold(step.in_scope_before_fen)
    return NOTHING_TO_DISCOUNT if reached else THRESHOLD_NOT_REACHED


# --- the result ----------------------------------------------------------------------------------


def _planned_discounts(combination: _Combination) -> tuple[PlannedDiscount, ...]:
    planned = []
    for offer, step in zip(combination.offers, combination.steps):
        if step.amount_fen <= 0:
            continue
        if offer.activity is not None:
            planned.append(PlannedDiscount("full_reduction", offer.ref, step.amount_fen,
                                           offer.activity.describe(step.in_scope_before_fen), offer.line_indexes))
        else:
            planned.append(PlannedDiscount("coupon", offer.ref, step.amount_fen, offer.name, offer.line_indexes))
    return tuple(planned)


def _outcomes(basket: _Basket, wallet: Sequence[WalletCoupon], combination: _Combination, now: datetime,
              unchosen_reason: str) -> tuple[CouponOutcome, ...]:
    """One outcome per unused coupon (locked and used ones are not the buyer's to choose), in wallet order."""
    applied = {offer.ref: step.amount_fen for offer, step in zip(combination.coupons, combination.coupon_steps)}
    outcomes = []
    for coupon in wallet:
        if coupon.status != "unused":
            continue
        if coupon.coupon_id in applied:
            outcomes.append(CouponOutcome(coupon.coupon_id, True, applied[coupon.coupon_id]))
        else:
            outcomes.append(_why_not_applied(basket, coupon, combination, now, unchosen_reason))
    return tuple(outcomes)


def _why_not_applied(basket: _Basket, coupon: WalletCoupon, combination: _Combination, now: datetime,
                     unchosen_reason: str) -> CouponOutcome:
    """The first reason that holds, from the coupon alone to its place beside the chosen ones."""
    offer = _coupon_offer(coupon, basket)
    conflicts: tuple[_Offer, ...] = ()
    step: _Step | None = None
    reason = coupon.unusable_reason(now)
    if reason is None and not offer.line_indexes:
        reason = OUT_OF_SCOPE
    if reason is None and basket.standalone_fen(offer) == 0:
        step = _take(basket.base, offer)
        reason = _zero_reason(offer, step)
    if reason is None:
        conflicts = tuple(other for other in combination.offers if offer.clashes_with(other))
        reason = DOES_NOT_STACK if conflicts else None
    if reason is None:
        trial = basket.evaluate(combination.activity, combination.coupons + (offer,))
        step = dict(zip((o.ref for o in trial.coupons), trial.coupon_steps))[offer.ref]
        reason = _zero_reason(offer, step) if step.amount_fen == 0 else unchosen_reason
    return CouponOutcome(coupon.coupon_id, False, 0, reason,
                         _reason_text(reason, offer, step=step, conflicts=conflicts),
                         tuple(other.ref for other in conflicts))


def _reason_text(reason: str, offer: _Offer, *, step: _Step | None = None,
                 conflicts: tuple[_Offer, ...] = ()) -> str:
    """The reason for the buyer, in Chinese (the mini-program's language)."""
    if reason == THRESHOLD_NOT_REACHED and step is not None and offer.coupon is not None:
        threshold = offer.coupon.terms.effective_threshold_fen
        gap = threshold - step.in_scope_before_fen
        return f"适用商品满{format_yuan(threshold)}可用，还差{format_yuan(gap)}"
    if reason == DOES_NOT_STACK and conflicts:
        return "不可与" + "、".join(f"「{other.name}」" for other in conflicts) + "同时使用"
    return _FIXED_TEXTS.get(reason, reason)


_FIXED_TEXTS = {
    EXPIRED: "已过期",
    NOT_YET_VALID: "未到使用时间",
    LOCKED: "已被待付款订单占用",
    USED: "已使用",
    OUT_OF_SCOPE: "订单中没有适用商品",
    THRESHOLD_NOT_REACHED: "未达到使用门槛",
    NOTHING_TO_DISCOUNT: "已无可优惠的金额",
    DOES_NOT_STACK: "不可与已选优惠同时使用",
    NOT_THE_BEST: "已为您选择更优惠的组合",
    NOT_SELECTED: "未选择",
}
