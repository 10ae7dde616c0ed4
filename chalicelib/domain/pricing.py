"""Pricing: `price(items, context) -> Quote`, the one function behind checkout preview and order
creation, so what the user saw is what the order charges.

The quote is a pipeline applied in a fixed order:

1. goods: each line's subtotal is unit price x quantity;
2. discounts (none yet; later member level, full-reduction, coupons, points), each adding an
   Adjustment and apportioned down to the lines it applies to;
3. delivery fee, by delivery method and the discounted goods amount.

Every discount is apportioned over the lines by largest remainder, so the fen add up exactly and
partial refunds, commissions and points can use what each line really cost.
payable_fen = goods_fen - discount_fen + delivery_fee_fen.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Literal

from chalicelib.domain.money import apportion
from chalicelib.errors import BadRequest

DeliveryMethod = Literal["express", "pickup", "none"]
MAX_LINE_QUANTITY = 99
MAX_LINES = 40  # one order + 40 products + 40 SKUs stay under DynamoDB's 100 items per transaction


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


@dataclass(frozen=True)
class Discount:
    """What a discount step decides: the adjustment and which lines (indexes) share it."""
    adjustment: Adjustment
    line_indexes: tuple[int, ...]


# A discount step looks at the lines as discounted so far and may grant one discount.
DiscountStep = Callable[[tuple[QuoteLine, ...], PricingContext], "Discount | None"]
DISCOUNT_STEPS: tuple[DiscountStep, ...] = ()


class DeliveryMethodNotAllowed(BadRequest):
    code = "delivery_method_not_allowed"


def check_delivery_method(items: list[Item], method: DeliveryMethod) -> None:
    """Virtual-only orders ship nothing (`none`); anything physical needs express or pickup."""
    physical = any(not item.virtual for item in items)
    if physical and method == "none":
        raise DeliveryMethodNotAllowed("Physical goods need delivery_method express or pickup",
                                       details=[{"field": "delivery_method", "message": "express or pickup"}])
    if not physical and method != "none":
        raise DeliveryMethodNotAllowed("Virtual goods are not shipped: use delivery_method none",
                                       details=[{"field": "delivery_method", "message": "none"}])


def default_delivery_method(items: list[Item]) -> DeliveryMethod:
    return "express" if any(not item.virtual for item in items) else "none"


def price(items: list[Item], context: PricingContext) -> Quote:
    check_delivery_method(items, context.delivery_method)
    lines = tuple(_goods_line(item) for item in items)
    adjustments: list[Adjustment] = []
    for step in DISCOUNT_STEPS:
        discount = step(lines, context)
        if discount is not None and discount.adjustment.amount_fen > 0:
            lines, applied_fen = _apply_discount(lines, discount)
            if applied_fen > 0:
                adjustments.append(replace(discount.adjustment, amount_fen=applied_fen))
    goods = sum(line.subtotal_fen for line in lines)
    discount_total = sum(line.discount_fen for line in lines)
    delivery_fee = delivery_fee_fen(goods - discount_total, context)
    return Quote(lines=lines, goods_fen=goods, discount_fen=discount_total, delivery_fee_fen=delivery_fee,
                 payable_fen=goods - discount_total + delivery_fee, adjustments=tuple(adjustments),
                 delivery_method=context.delivery_method)


def delivery_fee_fen(discounted_goods_fen: int, context: PricingContext) -> int:
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
