from __future__ import annotations

import pytest

from chalicelib.domain.refunds import LineShare, refund_amount, refund_for_units
from chalicelib.errors import BadRequest

LINE = LineShare(sku_id="a", quantity=3, payable_fen=1000)  # 333.33 a unit


def test_each_unit_is_rounded_down_and_the_last_takes_the_remainder():
    assert [refund_for_units(LINE, n, 1) for n in range(3)] == [333, 333, 334]


def test_partial_refunds_of_a_line_add_up_to_exactly_its_payable():
    for split in ([1, 1, 1], [2, 1], [1, 2], [3]):
        refunded, total = 0, 0
        for units in split:
            total += refund_for_units(LINE, refunded, units)
            refunded += units
        assert total == 1000


def test_more_units_than_are_left_are_refused():
    with pytest.raises(BadRequest):
        refund_for_units(LINE, 2, 2)
    with pytest.raises(BadRequest):
        refund_for_units(LINE, 0, 0)


def test_the_delivery_fee_comes_back_only_when_asked_for_the_whole_unshipped_order():
    lines = [LINE, LineShare("b", 1, 500)]
    assert refund_amount(lines, {}, {"a": 3, "b": 1}, 800, refund_delivery_fee=True) == 2300
    assert refund_amount(lines, {}, {"b": 1}, 800, refund_delivery_fee=False) == 500


def test_a_sku_not_in_the_order_is_refused():
    with pytest.raises(BadRequest) as error:
        refund_amount([LINE], {}, {"zzz": 1}, 0, False)
    assert error.value.code == "sku_not_in_order"
