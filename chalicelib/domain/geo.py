"""Distances between stores and buyers (WGS-84 degrees, as wx.getLocation answers with type wgs84)."""
from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8  # the mean radius: within 0.5% anywhere, far below a store's footprint


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> int:
    """Great-circle distance in whole metres (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = math.radians(lat2 - lat1), math.radians(lng2 - lng1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return round(2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a))))


# Same-city delivery (同城配送) from the nearest store: (up to metres, fee in fen, ETA in minutes).
SAME_CITY_BANDS: tuple[tuple[int, int, int], ...] = ((3_000, 500, 30), (5_000, 800, 45), (10_000, 1_200, 60))


def same_city_band(distance: int) -> tuple[int, int] | None:
    """(fee_fen, eta_minutes) for a delivery of `distance` metres; None beyond the last band."""
    for up_to, fee_fen, eta_minutes in SAME_CITY_BANDS:
        if distance <= up_to:
            return fee_fen, eta_minutes
    return None
