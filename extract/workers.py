"""How many extraction workers a machine can take, and what a time limit per page must be:
checked by the pool, the CLI and the settings alike, without importing the pool (and with it
trafilatura) just to validate a number."""

from __future__ import annotations

import math
import os

__all__ = ["MAX_WORKERS_PER_CORE", "check_pool", "default_workers", "max_workers"]

# More worker processes than cores only add memory (each holds trafilatura, lxml and its
# pages: `--workers 1000` took 6.4 GB and finished no sooner); four a core leaves room for a
# machine whose pages wait on a slow disk.
MAX_WORKERS_PER_CORE = 4


def max_workers() -> int:
    return MAX_WORKERS_PER_CORE * default_workers()


def check_pool(workers: int | None, timeout_s: float) -> None:
    """ValueError, saying what to give instead, for a worker count or time limit the pool
    cannot honour. NaN and infinity are refused: `timeout nan` compared false with every
    deadline and so switched the per-page limit off."""
    if not math.isfinite(timeout_s) or timeout_s <= 0:
        raise ValueError(f"timeout_s, the time limit per page, must be a positive number of"
                         f" seconds, got {timeout_s}; e.g. 30")
    if workers is not None and not 1 <= workers <= max_workers():
        raise ValueError(f"workers must be 1 to {max_workers()} ({MAX_WORKERS_PER_CORE} per core"
                         f" here), got {workers}; leave it out for one per core")


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
