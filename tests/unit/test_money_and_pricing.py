from __future__ import annotations

import random

import pytest

from chalicelib.domain import pricing
from chalicelib.domain.money import apportion, format_yuan
from chalicelib.domain.pricing import Adjustment, Discount, Item, PricingContext


def _item(sku: str, price: int, quantity: int, virtual: bool = False) -> Item:
    return Item(sku_id=sku, product_id=f"p-{sku}", name=sku, specs={}, price_fen=price, quantity=quantity,
                virtual=virtual)


def test_apportioned_shares_always_add_up_exactly():
    rng = random.Random(7)
    for _ in range(500):
        weights = [rng.randint(0, 10_000) for _ in range(rng.randint(1, 8))]
        if sum(weights) == 0:
            continue
        amount = rng.randint(0, 50_000)
        shares = apportion(amount, weights)
        assert sum(shares) == amount
        for share, weight in zip(shares, weights):  # each within one fen of its exact share
            assert abs(share - amount * weight / sum(weights)) < 1


def test_the_leftover_fen_go_to_the_largest_remainders():
    assert apportion(100, [1, 1, 1]) == [34, 33, 33]
    assert apportion(10, [3, 3, 4]) == [3, 3, 4]
    assert apportion(0, [0, 0]) == [0, 0]
    with pytest.raises(ValueError):
        apportion(1, [0, 0])


def test_yuan_formatting_is_for_people_only():
    assert format_yuan(3990) == "¥39.90" and format_yuan(5) == "¥0.05" and format_yuan(-100) == "-¥1.00"


def test_goods_and_express_fee_below_the_free_shipping_threshold():
    quote = pricing.price([_item("a", 3990, 2)], PricingContext("express"))
    assert (quote.goods_fen, quote.discount_fen, quote.delivery_fee_fen, quote.payable_fen) == (7980, 0, 800, 8780)
    assert quote.lines[0].subtotal_fen == 7980 and quote.lines[0].payable_fen == 7980


def test_express_is_free_from_the_threshold_and_pickup_is_always_free():
    assert pricing.price([_item("a", 9900, 1)], PricingContext("express")).delivery_fee_fen == 0
    assert pricing.price([_item("a", 100, 1)], PricingContext("pickup")).delivery_fee_fen == 0


def test_virtual_goods_use_delivery_none_and_physical_goods_may_not():
    assert pricing.price([_item("card", 10000, 1, virtual=True)], PricingContext("none")).payable_fen == 10000
    with pytest.raises(pricing.DeliveryMethodNotAllowed):
        pricing.price([_item("card", 10000, 1, virtual=True)], PricingContext("express"))
    with pytest.raises(pricing.DeliveryMethodNotAllowed):
        pricing.price([_item("a", 100, 1), _item("card", 100, 1, virtual=True)], PricingContext("none"))


def test_a_discount_step_is_apportioned_to_lines_and_recorded(monkeypatch):
    def ten_yuan_off(lines, context):
        return Discount(Adjustment("full_reduction", "demo", 1000, "满50减10"), tuple(range(len(lines))))

    monkeypatch.setattr(pricing, "DISCOUNT_STEPS", (ten_yuan_off,))
    quote = pricing.price([_item("a", 3990, 1), _item("b", 2990, 1)], PricingContext("pickup"))
    assert quote.discount_fen == 1000 and [a.amount_fen for a in quote.adjustments] == [1000]
    assert sum(line.discount_fen for line in quote.lines) == 1000
    assert all(line.payable_fen == line.subtotal_fen - line.discount_fen for line in quote.lines)
    assert quote.payable_fen == quote.goods_fen - quote.discount_fen + quote.delivery_fee_fen


def test_a_discount_larger_than_the_goods_is_capped_and_recorded_as_applied(monkeypatch):
    monkeypatch.setattr(pricing, "DISCOUNT_STEPS", (
        lambda lines, context: Discount(Adjustment("coupon", "big", 99_999, "大额券"), (0,)),))
    quote = pricing.price([_item("a", 500, 1)], PricingContext("pickup"))
    assert quote.payable_fen == 0 and quote.adjustments[0].amount_fen == 500
