"""Units sold per product, as the catalog's `sort=sales` counts them: a payment counts its order's
units, a refund with lines gives its units back. Each (payment or refund, product) pair is
counted once, under the marker key made here (services/sales_counts.py writes it in the same
transaction as the product's count)."""
from __future__ import annotations

from typing import Iterable, Protocol


class _Line(Protocol):
    sku_id: str
    product_id: str
    quantity: int


def _by_product(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for product_id, units in pairs:
        totals[product_id] = totals.get(product_id, 0) + units
    return {product_id: units for product_id, units in totals.items() if units}


def sold_marks(order_id: str, lines: Iterable[_Line]) -> dict[str, dict[str, int]]:
    """product_id -> {marker key: units} for a paid order."""
    return {product_id: {f"sales#order#{order_id}#{product_id}": units}
            for product_id, units in _by_product((line.product_id, line.quantity) for line in lines).items()}


def refund_marks(out_refund_no: str, lines: Iterable[_Line],
                 refunded: Iterable[tuple[str, int]]) -> dict[str, dict[str, int]]:
    """product_id -> {marker key: -units} for a completed refund of (sku_id, units)."""
    product_of = {line.sku_id: line.product_id for line in lines}
    taken = _by_product((product_of[sku_id], units) for sku_id, units in refunded if sku_id in product_of)
    return {product_id: {f"sales#refund#{out_refund_no}#{product_id}": -units}
            for product_id, units in taken.items()}


def merge(into: dict[str, dict[str, int]], marks: dict[str, dict[str, int]]) -> None:
    for product_id, entries in marks.items():
        into.setdefault(product_id, {}).update(entries)
