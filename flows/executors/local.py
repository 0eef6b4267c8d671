"""The local executor: discovery, fetching and extraction overlapped on one machine.

Each source's fetch task is submitted as soon as that source is discovered, and every fetch
task hands its pages, as they arrive, to ONE extraction pool (`extract.pool.iter_clean_pages`
reads the feed), so a slow sitemap holds up only its own pages and extraction runs while the
network is waited on. The feed is bounded (flows.feed.FEED_MAX_BYTES, FEED_MAX_PAGES): where
extraction is the slower side, fetching waits for it instead of filling memory with pages.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.futures import as_completed

from flows.executors import Extracted, SourceTasks
from flows.tasks import extract_feed

# The GIL's switch interval while sources are being discovered (Python's default: 5 ms). A
# thread woken by its socket waits for the GIL up to the interval whenever another thread
# computes: while discovery parses big feeds, the fetch threads of the sources already
# discovered get few pages through and the extraction workers sit idle. Shortened only during
# discovery: with many fetch threads and nothing parsing, a short interval costs every page
# more CPU in switches. bench/bench_e2e.py (--profile) measures both sides.
SWITCH_INTERVAL_S = 0.0005


@contextmanager
def _switch_interval(seconds: float) -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _warm_up_grouping() -> None:
    """Import the grouping code (NumPy, SciPy, datasketch, wordfreq: ~0.7 s on one core) in a
    background thread while extraction keeps both cores busy. `import dedupe` leaves it out so
    that a run's first seconds, when nothing else can run yet, do not wait for it, and imported
    at the dedupe stage it would again have one core to itself."""
    threading.Thread(target=importlib.import_module, args=("dedupe.grouping",),
                     name="newsdedup-import-grouping", daemon=True).start()


def _label(names: list[str]) -> str:
    """A task-run name for several sources: `extract-a+b`, `extract-a+b+3-more`."""
    shown = "+".join(names[:2])
    return shown + (f"+{len(names) - 2}-more" if len(names) > 2 else "")


def run(tasks: SourceTasks) -> Extracted:
    """Discover, fetch and extract every source, overlapped. The extraction task runs beside
    the discovery loop; a page is bounded by its time limit in the pool, the feed by the fetch
    tasks' backstops."""
    ex = tasks.settings.extract
    extraction = extract_feed.submit(_label(tasks.names), tasks.feed, ex.workers, ex.timeout_s)
    try:
        with _switch_interval(SWITCH_INTERVAL_S):
            for fut in as_completed(list(tasks.discoveries)):
                tasks.fetch(tasks.record(fut))
    except BaseException:
        tasks.feed.abandon()
        extraction.wait()
        raise
    discover_done = time.perf_counter()
    _warm_up_grouping()
    pages, articles = extraction.result()
    tasks.raise_fetch_failure()
    fetch_done = tasks.feed.fetch_finished_at or time.perf_counter()
    return tasks.extracted(pages, articles, discover_done, fetch_done)
