"""How much a refund returns (API.md "After-sales").

A line's refund is its payable_fen times the share of its units refunded, rounded down, with the
line's last unit taking the remainder: computed cumulatively (what all refunds of the line
return so far, minus what earlier refunds returned), so partial refunds of a line always add up
to exactly its payable_fen. The delivery fee is refunded with the whole order, and only when
nothing has shipped.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.errors import BadRequest


@dataclass(frozen=True)
class LineShare:
    sku_id: str
    quantity: int  # units bought
    payable_fen: int  # what the line really cost, after discounts


def refund_for_units(line: LineShare, already_refunded: int, units: int) -> int:
    """Fen returned for `units` more units of `line`, after `already_refunded` units."""
    if units <= 0 or already_refunded < 0 or already_refunded + units > line.quantity:
        raise BadRequest("More units than the line has left to refund", code="refund_exceeds_order",
                         details=[{"sku_id": line.sku_id, "refundable": line.quantity - max(already_refunded, 0)}])
    return _cumulative(line, already_refunded + units) - _cumulative(line, already_refunded)


def _cumulative(line: LineShare, units: int) -> int:
    if units >= line.quantity:
        return line.payable_fen  # the last unit takes the remainder
    return line.payable_fen * units // line.quantity


def refund_amount(lines: list[LineShare], already_refunded: dict[str, int], request: dict[str, int],
                  delivery_fee_fen: int, refund_delivery_fee: bool) -> int:
    """The total for refunding `request` (sku_id -> units) of an order."""
    by_sku = {line.sku_id: line for line in lines}
    unknown = [sku_id for sku_id in request if sku_id not in by_sku]
    if unknown:
        raise BadRequest("These SKUs are not in the order", code="sku_not_in_order",
                         details=[{"sku_id": sku_id} for sku_id in unknown])
    total = sum(refund_for_units(by_sku[sku_id], already_refunded.get(sku_id, 0), units)
                for sku_id, units in request.items())
    return total + (delivery_fee_fen if refund_delivery_fee else 0)
