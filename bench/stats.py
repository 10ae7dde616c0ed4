"""Summaries of latency samples (seconds in, milliseconds out)."""
from __future__ import annotations

import statistics


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize_ms(samples: list[float]) -> dict[str, float | int]:
    """n, p50/p90/p99/min/max/mean in ms, and the sequential rate (1 / mean) per second."""
    mean = statistics.fmean(samples)
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 50) * 1000, 3),
        "p90_ms": round(percentile(samples, 90) * 1000, 3),
        "p99_ms": round(percentile(samples, 99) * 1000, 3),
        "min_ms": round(min(samples) * 1000, 3),
        "max_ms": round(max(samples) * 1000, 3),
        "mean_ms": round(mean * 1000, 3),
        "per_second": round(1.0 / mean, 1) if mean > 0 else float("inf"),
    }
