"""Money is integer fen. Splitting an amount over parts uses the largest-remainder method, so
the parts always add up to the amount exactly, and each part gets its fair share to the fen."""
from __future__ import annotations


def apportion(amount_fen: int, weights: list[int]) -> list[int]:
    """Split `amount_fen` in proportion to `weights` (non-negative ints); the shares sum to the amount.

    Each share is first rounded down; the fen left over go one each to the parts with the
    largest remainders (ties: the earlier part), the usual way to make totals add up.
    """
    if amount_fen < 0:
        raise ValueError("amount_fen must not be negative")
    if any(weight < 0 for weight in weights):
        raise ValueError("weights must not be negative")
    total = sum(weights)
    if total == 0:
        if amount_fen == 0:
            return [0] * len(weights)
        raise ValueError("cannot apportion a non-zero amount over zero weights")
    shares = [amount_fen * weight // total for weight in weights]
    remainders = [amount_fen * weight % total for weight in weights]
    leftover = amount_fen - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:leftover]:
        shares[index] += 1
    return shares


def format_yuan(amount_fen: int) -> str:
    """"¥39.90" for messages to people; never for arithmetic."""
    sign = "-" if amount_fen < 0 else ""
    return f"{sign}¥{abs(amount_fen) // 100}.{abs(amount_fen) % 100:02d}"
