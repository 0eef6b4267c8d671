"""Scale-out switches: extraction on a Dask cluster (`[extract] executor = "dask"`) and the LSH
index in Redis (`[dedupe] lsh_storage = "redis"`). Only connection plumbing lives here; what
runs on the cluster is the same library code as on one machine."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flows.config import DedupeSettings, ExtractSettings

T = TypeVar("T")

# Pages per Dask task: 64 pages of tens of milliseconds each are seconds of work, long enough that
# Prefect's tens of milliseconds per task run and Dask's scheduling are ~1% of it, short enough
# that 2 workers share even a 200-page run in 4 batches. Current per-page CPU:
# `python -m bench.pages`.
BATCH_PAGES = 64
# Prefect drops task-run records above a few thousand per flow run, so batches grow past
# BATCH_PAGES instead of exceeding this many: 100,000 pages -> 1,000 batches of 100.
MAX_BATCHES = 1000


def batches(
    items: Sequence[T], size: int | None = None, max_batches: int = MAX_BATCHES
) -> list[list[T]]:
    """`items` cut into consecutive batches of `size` (default BATCH_PAGES; larger when that
    would make more than `max_batches`), in order."""
    size = BATCH_PAGES if size is None else size
    if size < 1 or max_batches < 1:
        raise ValueError(f"size and max_batches must be at least 1, got {size}, {max_batches}")
    size = max(size, math.ceil(len(items) / max_batches))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def dask_task_runner(settings: ExtractSettings) -> Any:
    """A prefect-dask DaskTaskRunner: the cluster at `dask_address`, or a LocalCluster of one
    single-threaded worker process per core (lxml is not thread-safe)."""
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    from extract.pool import default_workers

    n = settings.workers or default_workers()
    # dashboard_address=None: no web server on a port we did not ask for.
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": n, "threads_per_worker": 1, "processes": True,
                        "dashboard_address": None}
    )


@contextmanager
def dask_environment() -> Iterator[None]:
    """Settings for the block that uses Dask.

    Dask starts worker processes as daemons, and a daemon may not start processes, which the
    extraction pool needs (a hard per-page time limit needs a killable child). For the
    LocalCluster we start, the workers are made non-daemonic; a remote cluster's workers keep
    their own setting (extract_batch falls back to in-process extraction there).

    distributed logs every scheduler and nanny step at INFO (40 lines for one run); the run
    log keeps its warnings only."""
    import dask

    log = logging.getLogger("distributed")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        with dask.config.set({"distributed.worker.daemon": False}):
            yield
    finally:
        log.setLevel(level)


def redis_storage_config(settings: DedupeSettings, basename: str) -> dict[str, Any] | None:
    """datasketch's storage_config for MinHashLSH, or None for in-memory buckets."""
    if settings.lsh_storage != "redis":
        return None
    parts = urlsplit(settings.redis_url)
    if parts.scheme not in {"redis", ""}:
        raise ValueError(
            f"[dedupe].redis_url: {settings.redis_url!r} is not a redis:// URL; "
            "use e.g. redis://127.0.0.1:6379/0"
        )
    redis: dict[str, Any] = {"host": parts.hostname or "127.0.0.1", "port": parts.port or 6379}
    db = parts.path.strip("/")
    if db:
        redis["db"] = int(db)
    if parts.password:
        redis["password"] = parts.password
    return {"type": "redis", "redis": redis, "basename": basename.encode()}


def drop_redis_keys(storage_config: dict[str, Any]) -> int:
    """Delete every key under the storage_config's basename (this run's LSH buckets). The index
    is rebuilt from the signatures stored in the warehouse on each run, so nothing is lost."""
    import redis

    client = redis.Redis(**storage_config["redis"])
    try:
        prefix: bytes = storage_config["basename"]
        keys = list(client.scan_iter(match=prefix + b"*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i : i + 1000])
        return len(keys)
    finally:
        client.close()
