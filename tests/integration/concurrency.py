"""Real-thread races for the concurrency tests."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from chalicelib.errors import AppError


def race(workers: int, task) -> list:
    """Run `task(n)` for n in range(workers), released together by a barrier; an AppError
    counts as its code, so tests can assert on every outcome."""
    barrier = threading.Barrier(workers)

    def run(n: int):
        barrier.wait()
        try:
            return task(n)
        except AppError as error:
            return error.code

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, range(workers)))
