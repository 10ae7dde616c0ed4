"""Bargain (砍价) rules: how much each helper's cut takes off, pure and property-tested.

A bargain starts at the SKU's price and goes down, one cut per helper, to the activity's floor.
`cut_amount` draws each cut around the fair share of what is left (remaining / cuts left, times
a factor in [1 - SPREAD, 1 + SPREAD] from the caller's random number), at least 1 fen, leaving at
least 1 fen for each later cut, so: the price never goes below the floor, the cuts add up to
exactly start - floor, and cut number `helpers_to_floor` (the last) lands on the floor. When
fewer fen are left than cuts, cuts of 1 fen reach the floor sooner ("about N helpers").
"""
from __future__ import annotations

SPREAD = 0.6  # a cut is 0.4x..1.6x the fair share: lively, yet the last helpers still cut something
MIN_HELPERS, MAX_HELPERS = 1, 100


def cut_amount(remaining_fen: int, cuts_done: int, helpers_to_floor: int, draw: float) -> int:
    """Fen the next cut takes off. `remaining_fen` is price - floor (>= 0), `cuts_done` the cuts
    so far, `draw` a number in [0, 1). 0 when the floor is reached."""
    if remaining_fen < 0 or cuts_done < 0 or helpers_to_floor < 1 or not 0 <= draw < 1:
        raise ValueError("remaining_fen and cuts_done >= 0, helpers_to_floor >= 1, 0 <= draw < 1")
    if remaining_fen == 0:
        return 0
    cuts_left = helpers_to_floor - cuts_done
    if cuts_left <= 1:
        return remaining_fen  # the last (or a later) helper lands on the floor
    fair = remaining_fen / cuts_left
    drawn = int(fair * (1 - SPREAD + 2 * SPREAD * draw))
    most = remaining_fen - (cuts_left - 1) if remaining_fen >= cuts_left else remaining_fen
    return max(1, min(drawn, most))
