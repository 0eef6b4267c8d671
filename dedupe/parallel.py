"""`map_chunks`: one job cut into chunks of indexes, mapped over forked processes. Each chunk's
result depends on the job and its bounds alone, so how the work is split never changes a
result; used for shingling, fingerprinting and pair similarities."""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import signal
from collections.abc import Callable
from typing import Any, TypeVar

_J = TypeVar("_J")
_R = TypeVar("_R")


def _quiet_worker() -> None:
    # A forked worker inherits its parent's signal handlers, and leaving `with Pool()` ends the
    # workers still running with SIGTERM: under a Prefect flow run, whose SIGTERM handler
    # raises, such a worker printed a TerminationSignal traceback into the dedupe task's log.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def fork_pool(workers: int) -> multiprocessing.pool.Pool:
    """A pool of `workers` forked processes that SIGTERM ends quietly. Fork, not spawn: the
    workers inherit the job (texts, word table) instead of receiving it pickled, and start
    without re-importing the package."""
    return multiprocessing.get_context("fork").Pool(workers, initializer=_quiet_worker)


# The job of the chunks being mapped (map_chunks): forked workers inherit it, not pickled.
_FORK_JOB: object = None


def _run_chunk(task: tuple[Callable[[Any, int, int], _R], int, int]) -> _R:
    fn, start, stop = task
    return fn(_FORK_JOB, start, stop)


def map_chunks(
    fn: Callable[[_J, int, int], _R], job: _J, n: int, chunk: int, parallel: bool,
    workers: int | None = None,
) -> list[_R]:
    """[fn(job, start, stop) for each chunk [start, stop) of range(n)], in order: over `workers`
    forked processes (default: the CPU count, at most 2) when `parallel` and this machine can
    fork, in this process otherwise. The workers inherit `job` instead of receiving it pickled;
    `fn` must be a module-level function (it is pickled by name). Each chunk's result depends on
    `job` and its bounds alone, so the split does not change the results."""
    global _FORK_JOB
    n_workers = min(2, os.cpu_count() or 1) if workers is None else workers
    tasks = [(fn, a, min(a + chunk, n)) for a in range(0, n, chunk)]
    if not parallel or n_workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [fn(job, start, stop) for _, start, stop in tasks]
    _FORK_JOB = job
    try:
        with fork_pool(n_workers) as pool:
            return pool.map(_run_chunk, tasks, chunksize=1)
    finally:
        _FORK_JOB = None
