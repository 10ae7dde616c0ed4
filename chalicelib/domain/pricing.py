"""Pricing: `price(items, context) -> Quote`, the one function behind checkout preview and order
creation, so what the user saw is what the order charges.

The quote is a pipeline applied in a fixed order (API.md):

1. goods: each line's subtotal is unit price x quantity;
2. DISCOUNT_STEPS: the member-level discount (member_discount_permille, on every line);
3. promotions (domain/promotions.py): one full-reduction activity, then coupons, chosen together
   (the best legal combination, or exactly `coupon_ids`) under the stacking rules documented
   there; each of the user's unused coupons gets a CouponOutcome saying why it does or does not apply;
4. delivery fee, by delivery method and the goods amount after the discounts above;
(An offer order, group-buy or bargain, is priced by OFFER_STEPS alone: the offer's price is the
price, with no member discount, activity, coupon or points on top: see `offer_discount`.)
5. points (domain/points.py): `points_requested` of the user's `points_balance`, 1 point = 1 fen,
   at most `points_max_redeem_permille` of the goods after the discounts above and never below
   the 1-fen minimum; more than that is 409 insufficient_points naming `points_usable`. Points
   are a way to pay: they do not cost the buyer free shipping (the fee is decided before them).

Each discount adds an Adjustment (kind member_level, code = the level; kind full_reduction,
code = activity_id; kind coupon, code = coupon_id; kind points, code = "points") and is apportioned over the lines it applies
to by largest remainder of what they still pay, so the fen add up exactly and partial refunds,
commissions and points can use what each line really cost. No line goes below 0, and the
marketing discounts above never bring the discounted goods below MIN_PAYABLE_FEN (1 fen, WeChat
Pay's minimum): the discount that would is reduced instead (a step plugged into DISCOUNT_STEPS
should do the same with `room_above_minimum`).
payable_fen = goods_fen - discount_fen + delivery_fee_fen.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterable, Literal

from chalicelib.domain.money import apportion
from chalicelib.errors import BadRequest, Conflict

if TYPE_CHECKING:  # imported when first needed (price()): the cold start imports this module for its limits
    from datetime import datetime

    from chalicelib.domain.coupons import CouponOutcome, FullReductionActivity, WalletCoupon

DeliveryMethod = Literal["express", "pickup", "same_city", "none"]
MAX_LINE_QUANTITY = 99
MAX_LINES = 40  # one order + 40 products + 40 SKUs stay under DynamoDB's 100 items per transaction
MIN_PAYABLE_FEN = 1  # WeChat Pay's minimum: marketing discounts leave at least this much of the goods to pay


@dataclass(frozen=True)
class Item:
    """A SKU as it is being sold now, and how many the buyer wants."""
    sku_id: str
    product_id: str
    name: str
    specs: dict[str, str]
    price_fen: int
    quantity: int
    virtual: bool = False
    category_path: tuple[str, ...] = ()  # the product's category ancestors, root first, self last (for scopes)


@dataclass(frozen=True)
class DeliveryPolicy:
    """Express costs a flat fee unless the discounted goods reach the free-shipping threshold."""
    express_fee_fen: int = 800
    free_express_from_fen: int = 9900


@dataclass(frozen=True)
class PricingContext:
    delivery_method: DeliveryMethod
    delivery_policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    member_level: str = "normal"
    now: datetime | None = None  # needed when there are activities or coupons (validity windows)
    activities: tuple[FullReductionActivity, ...] = ()  # the running ones are considered
    wallet: tuple[WalletCoupon, ...] = ()  # the user's coupons (any status)
    coupon_ids: tuple[str, ...] | None = None  # None: the best legal combination; else exactly these
    member_discount_permille: int = 1000  # the member pays this share of the goods (1000 = no discount)
    points_balance: int = 0  # the user's spendable points
    points_requested: int | None = None  # points the buyer wants to use (None or 0: none)
    points_max_redeem_permille: int = 500  # points pay at most this share of the discounted goods
    same_city_fee_fen: int = 0  # same_city: the fee of the distance band (domain/geo.py), decided by the caller
    same_city_eta_minutes: int | None = None
    offer: Offer | None = None  # a group-buy or bargain price for one unit of one SKU (offer_discount)


@dataclass(frozen=True)
class Offer:
    """A special price for one unit of one SKU: a group-buy's group price or a bargain's reached
    price, granted by its service (services/group_buys.py, services/bargains.py)."""
    kind: str  # group_buy | bargain (the adjustment's kind)
    code: str  # the group_id or bargain_id (the adjustment's code)
    sku_id: str
    unit_price_fen: int
    description: str


class OfferItemsMismatch(BadRequest):
    code = "offer_items_mismatch"


@dataclass(frozen=True)
class Adjustment:
    kind: str  # member_level, full_reduction, coupon, points, ...
    code: str
    amount_fen: int
    description: str


@dataclass(frozen=True)
class QuoteLine:
    sku_id: str
    product_id: str
    name: str
    specs: dict[str, str]
    price_fen: int
    quantity: int
    subtotal_fen: int
    discount_fen: int
    payable_fen: int
    virtual: bool = False


@dataclass(frozen=True)
class Quote:
    lines: tuple[QuoteLine, ...]
    goods_fen: int
    discount_fen: int
    delivery_fee_fen: int
    payable_fen: int
    adjustments: tuple[Adjustment, ...]
    delivery_method: DeliveryMethod
    coupons: tuple[CouponOutcome, ...] = ()  # one per unused wallet coupon: applied, or why not
    points_usable: int = 0  # the most points this order could use
    points_used: int = 0
    delivery_eta_minutes: int | None = None  # same_city: when the rider should be there

    @property
    def applied_coupon_ids(self) -> tuple[str, ...]:
        """The coupons this quote uses, in the order they were applied (to lock with the order)."""
        return tuple(adjustment.code for adjustment in self.adjustments if adjustment.kind == "coupon")


@dataclass(frozen=True)
class Discount:
    """What a discount step decides: the adjustment and which lines (indexes) share it."""
    adjustment: Adjustment
    line_indexes: tuple[int, ...]


def room_above_minimum(payables: Iterable[int]) -> int:
    """How much more may come off the goods without going below MIN_PAYABLE_FEN."""
    return max(0, sum(payables) - MIN_PAYABLE_FEN)


# A discount step looks at the lines as discounted so far and may grant one discount.
DiscountStep = Callable[[tuple[QuoteLine, ...], PricingContext], "Discount | None"]


def member_level_discount(lines: tuple[QuoteLine, ...], context: PricingContext) -> Discount | None:
    """The member level's rate on every line (950 = 9.5折), rounded down in the buyer's disfavour
    by under a fen, never below the 1-fen minimum."""
    permille = context.member_discount_permille
    if not 0 <= permille <= 1000:
        raise ValueError("member_discount_permille must be within 0..1000")
    payables = [line.payable_fen for line in lines]
    amount = min(sum(payables) * (1000 - permille) // 1000, room_above_minimum(payables))
    if amount <= 0:
        return None
    description = f"会员{_zhe(permille)}"
    return Discount(Adjustment("member_level", context.member_level, amount, description), tuple(range(len(lines))))


def _zhe(permille: int) -> str:
    """950 -> "9.5折", 900 -> "9折", 885 -> "8.85折"."""
    return f"{permille / 100:.2f}".rstrip("0").rstrip(".") + "折"


# Before the promotions (activities and coupons), which are a choice made together: see price().
DISCOUNT_STEPS: tuple[DiscountStep, ...] = (member_level_discount,)


def offer_discount(lines: tuple[QuoteLine, ...], context: PricingContext) -> Discount | None:
    """An offer order is one unit of the offer's SKU; the discount brings it to the offer's price
    (never below MIN_PAYABLE_FEN, never a surcharge when the SKU got cheaper than the offer)."""
    offer = context.offer
    if len(lines) != 1 or lines[0].sku_id != offer.sku_id or lines[0].quantity != 1:
        raise OfferItemsMismatch(f"A {offer.kind} order is one unit of its SKU",
                                 details=[{"field": "items", "message": f"exactly [{{sku_id: {offer.sku_id}, quantity: 1}}]"}])
    amount = min(lines[0].payable_fen - max(offer.unit_price_fen, MIN_PAYABLE_FEN), room_above_minimum([lines[0].payable_fen]))
    if amount <= 0:
        return None
    return Discount(Adjustment(offer.kind, offer.code, amount, offer.description), (0,))


OFFER_STEPS: tuple[DiscountStep, ...] = (offer_discount,)


class InsufficientPoints(Conflict):
    code = "insufficient_points"


class DeliveryMethodNotAllowed(BadRequest):
    code = "delivery_method_not_allowed"


def check_delivery_method(items: list[Item], method: DeliveryMethod) -> None:
    """Virtual-only orders ship nothing (`none`); anything physical needs express, pickup or same_city."""
    physical = any(not item.virtual for item in items)
    if physical and method == "none":
        raise DeliveryMethodNotAllowed("Physical goods need delivery_method express, pickup or same_city",
                                       details=[{"field": "delivery_method", "message": "express, pickup or same_city"}])
    if not physical and method != "none":
        raise DeliveryMethodNotAllowed("Virtual goods are not shipped: use delivery_method none",
                                       details=[{"field": "delivery_method", "message": "none"}])


def default_delivery_method(items: list[Item]) -> DeliveryMethod:
    return "express" if any(not item.virtual for item in items) else "none"


def price(items: list[Item], context: PricingContext) -> Quote:
    check_delivery_method(items, context.delivery_method)
    lines = tuple(_goods_line(item) for item in items)
    adjustments: list[Adjustment] = []
    for step in OFFER_STEPS if context.offer else DISCOUNT_STEPS:
        discount = step(lines, context)
        if discount is not None and discount.adjustment.amount_fen > 0:
            lines, applied_fen = _apply_discount(lines, discount)
            if applied_fen > 0:
                adjustments.append(replace(discount.adjustment, amount_fen=applied_fen))
    coupon_outcomes: tuple[CouponOutcome, ...] = ()
    if context.offer is None and (context.activities or context.wallet or context.coupon_ids):
        lines, promotion_adjustments, coupon_outcomes = _apply_promotions(items, lines, context)
        adjustments.extend(promotion_adjustments)
    goods = sum(line.subtotal_fen for line in lines)
    delivery_fee = delivery_fee_fen(goods - sum(line.discount_fen for line in lines), context)
    lines, points_usable, points_used = _apply_points(lines, context, adjustments)
    discount_total = sum(line.discount_fen for line in lines)
    return Quote(lines=lines, goods_fen=goods, discount_fen=discount_total, delivery_fee_fen=delivery_fee,
                 payable_fen=goods - discount_total + delivery_fee, adjustments=tuple(adjustments),
                 delivery_method=context.delivery_method, coupons=coupon_outcomes, points_usable=points_usable,
                 points_used=points_used,
                 delivery_eta_minutes=context.same_city_eta_minutes if context.delivery_method == "same_city" else None)


def _apply_points(lines: tuple[QuoteLine, ...], context: PricingContext, adjustments: list[Adjustment]
                  ) -> tuple[tuple[QuoteLine, ...], int, int]:
    """The points step: (lines after it, points usable, points used); appends its adjustment."""
    from chalicelib.domain.points import POINT_VALUE_FEN, redeemable

    payables = [line.payable_fen for line in lines]
    usable = redeemable(context.points_balance, sum(payables), room_above_minimum(payables),
                        context.points_max_redeem_permille)
    requested = context.points_requested or 0
    if context.offer is not None:
        usable = 0  # an offer's price is the price: no points on top
    if requested <= 0:
        return lines, usable, 0
    if requested > usable:
        raise InsufficientPoints(
            f"At most {usable} points can be used on this order", details=[
                {"field": "points", "requested": requested, "points_usable": usable, "balance": context.points_balance}])
    adjustment = Adjustment("points", "points", requested * POINT_VALUE_FEN, f"{requested}积分抵扣")
    lines, applied = _apply_discount(lines, Discount(adjustment, tuple(range(len(lines)))))
    adjustments.append(replace(adjustment, amount_fen=applied))
    return lines, usable, requested


def _apply_promotions(items: list[Item], lines: tuple[QuoteLine, ...], context: PricingContext
                      ) -> tuple[tuple[QuoteLine, ...], list[Adjustment], tuple[CouponOutcome, ...]]:
    """The activity and coupons chosen by domain/promotions.py, applied in its order: the lines
    after them, their adjustments, and the wallet's coupon outcomes."""
    from chalicelib.domain.promotions import BasketLine, plan_promotions  # on first use, not at cold start

    plan = plan_promotions(
        [BasketLine(item.product_id, tuple(item.category_path), line.payable_fen) for item, line in zip(items, lines)],
        now=context.now, activities=context.activities, wallet=context.wallet, coupon_ids=context.coupon_ids,
        delivery_fee=lambda discounted_goods_fen: delivery_fee_fen(discounted_goods_fen, context))
    adjustments = []
    for planned in plan.discounts:  # amounts computed with the same apportionment, so applied whole
        adjustment = Adjustment(planned.kind, planned.code, planned.amount_fen, planned.description)
        lines, applied_fen = _apply_discount(lines, Discount(adjustment, planned.line_indexes))
        adjustments.append(replace(adjustment, amount_fen=applied_fen))
    return lines, adjustments, plan.coupons


def delivery_fee_fen(discounted_goods_fen: int, context: PricingContext) -> int:
    if context.delivery_method == "same_city":
        return context.same_city_fee_fen  # by distance, whatever the goods (a rider's trip costs the same)
    if context.delivery_method != "express":
        return 0
    policy = context.delivery_policy
    return 0 if discounted_goods_fen >= policy.free_express_from_fen else policy.express_fee_fen


def _goods_line(item: Item) -> QuoteLine:
    subtotal = item.price_fen * item.quantity
    return QuoteLine(sku_id=item.sku_id, product_id=item.product_id, name=item.name, specs=dict(item.specs),
                     price_fen=item.price_fen, quantity=item.quantity, subtotal_fen=subtotal,
                     discount_fen=0, payable_fen=subtotal, virtual=item.virtual)


def _apply_discount(lines: tuple[QuoteLine, ...], discount: Discount) -> tuple[tuple[QuoteLine, ...], int]:
    """Apportion the discount over its lines by what they still cost (never below zero);
    returns the new lines and the amount really applied."""
    eligible = list(discount.line_indexes)
    room = sum(lines[i].payable_fen for i in eligible)
    amount = min(discount.adjustment.amount_fen, room)
    shares = apportion(amount, [lines[i].payable_fen for i in eligible])
    updated = list(lines)
    for index, share in zip(eligible, shares):
        line = updated[index]
        updated[index] = replace(line, discount_fen=line.discount_fen + share, payable_fen=line.payable_fen - share)
    return tuple(updated), amount
