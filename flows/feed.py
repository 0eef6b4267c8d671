"""The page feed: fetched pages on their way from every source's fetch task to the one
extraction pool, bounded so that fetching keeps pace with extraction.

`fetch_into` runs inside a fetch task: it reads `extract.fetch.iter_fetch_indexed` and puts each
page on the feed as it comes; the extraction task iterates the feed. No Prefect task is defined
here; `PageFeed.watch` follows the fetch task runs' futures to know when the feed ends.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import closing, nullcontext
from datetime import datetime
from typing import Any

from prefect.futures import PrefectFuture

from extract.fetch import Fetcher, iter_fetch_indexed
from extract.policy import FetchPolicy
from extract.records import FetchedPage, Target
from warehouse.store import UrlState

# A page's place in the run's output: (source's position in the settings, position in that
# source's outcomes: its deferred URLs first, then its due targets in input order). Pages arrive
# in whatever order the network answers; sorting on this puts them back in the order a
# fetch-everything-first run produced, so a run's output does not depend on network timing.
PageKey = tuple[int, int]


# Fetched pages waiting for the extraction pool, at most (whichever bound comes first): fetching
# runs this far ahead of extraction, then each fetch thread waits for room before taking its
# next URL. Unbounded, a fast site filled memory with bodies: 10,000 local pages were all
# fetched 30 s into a 100 s run, ~700 MB of them waiting (bench/bench_e2e.py), and 100,000
# would have held ~7 GB. 64 MiB is ~900 typical pages (70 KiB), over 5 s of extraction on two
# cores; the pool reads its own window (extract.pool.WINDOW_PAGES_PER_WORKER) on top.
FEED_MAX_BYTES = 64 * 2**20
FEED_MAX_PAGES = 2048


class FeedClosed(RuntimeError):
    """The extraction stopped reading the feed (it failed, or the run is being abandoned)."""


class PageFeed:
    """Fetched pages on their way from every source's fetch task to the one extraction pool.

    A plain class on purpose: Prefect looks for futures inside task parameters that are
    collections, dataclasses or models (and would wait for them); it passes this through as is.
    Made for `fetch_tasks` fetch task runs, each followed with `watch` once it is submitted
    (sources are fetched as soon as each is discovered). The fetch tasks `put` pages from their
    threads; iterating yields (key, page) as they come and ends once every fetch task's run is
    final, or at once when one has failed or the flow gives up (`abandon`: a discovery failed);
    the flow raises the error after the pool has finished the pages in hand.

    Bounded: `put` waits while `max_pages` pages or `max_bytes` of bodies are waiting to be
    read (a put into an empty feed always goes in), so fetching keeps pace with extraction and
    memory does not grow with the run. The feed closes when its iteration ends (or the reader
    calls `close`); a put then raises FeedClosed instead of waiting for room that will never
    come."""

    def __init__(
        self, fetch_tasks: int, max_bytes: int = FEED_MAX_BYTES, max_pages: int = FEED_MAX_PAGES
    ) -> None:
        self._queue: queue.SimpleQueue[tuple[int, list[tuple[int, FetchedPage]], int] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._running = fetch_tasks
        self._failed = False
        self._seen: set[PageKey] = set()
        # Room in the feed: pages and body bytes put but not yet read, under their own lock.
        self._room = threading.Condition(threading.Lock())
        self._max_bytes = max_bytes
        self._max_pages = max_pages
        self._held_bytes = 0
        self._held_pages = 0
        self._closed = False
        # time.perf_counter() when the last fetch task finished: the pool may read the feed's
        # end later, when it has caught up.
        self.fetch_finished_at: float | None = None
        if fetch_tasks == 0:
            self._end(failed=False)

    def put(self, source_index: int, pages: list[tuple[int, FetchedPage]]) -> None:
        if not pages:
            return
        size = sum(len(page.body) for _, page in pages)
        with self._room:
            while not self._closed and self._held_pages and (
                self._held_pages + len(pages) > self._max_pages
                or self._held_bytes + size > self._max_bytes
            ):
                self._room.wait()
            if self._closed:
                raise FeedClosed("the extraction stopped reading fetched pages")
            self._held_pages += len(pages)
            self._held_bytes += size
        self._queue.put((source_index, pages, size))

    def close(self) -> None:
        """The reader stops: wake every waiting put (it raises FeedClosed)."""
        with self._room:
            self._closed = True
            self._room.notify_all()

    def watch(self, futures: Iterable[PrefectFuture[Any]]) -> None:
        """Follow these fetch task runs (counted in `fetch_tasks`)."""
        for fut in futures:
            fut.add_done_callback(self._task_done)

    def abandon(self) -> None:
        """No more fetch tasks will come: end the feed once the pages in hand are read."""
        self._end(failed=True)

    def _end(self, failed: bool) -> None:
        with self._lock:
            self._failed = self._failed or failed
            if self.fetch_finished_at is None:
                self.fetch_finished_at = time.perf_counter()
        self._queue.put(None)

    def _task_done(self, fut: PrefectFuture[Any]) -> None:
        try:
            fut.wait(0)  # the run is final: this records its final state on the future
            ok = fut.state.is_completed()
        except Exception:  # never leave the feed waiting: the flow reads the error from fut
            ok = False
        with self._lock:
            self._running -= 1
            last = self._running == 0 or self._failed or not ok
        if last:
            self._end(failed=not ok)

    def __iter__(self) -> Iterator[tuple[PageKey, FetchedPage]]:
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                source_index, pages, size = item
                with self._room:
                    self._held_pages -= len(pages)
                    self._held_bytes -= size
                    # One waiting put per page taken: a put is usually one page.
                    self._room.notify(len(pages))
                # A fetch task retried after a transient error puts its pages again: first
                # wins.
                for position, page in pages:
                    key = (source_index, position)
                    if key not in self._seen:
                        self._seen.add(key)
                        yield key, page
        finally:
            # The feed ended (a fetch task failed, or every one is done) or the reader gave up:
            # a fetch task still putting must fail, not wait for room (the Dask path reads the
            # feed in the flow and then waits for every fetch task).
            self.close()


def fetch_into(
    feed: PageFeed,
    source_index: int,
    targets: list[Target],
    policy: FetchPolicy,
    states: dict[str, UrlState],
    now: datetime,
    fetcher: Fetcher | None = None,
) -> Counter[str]:
    """Fetch `targets` with `fetcher` (the run's: one robots.txt cache, and per-host and overall
    limits that hold across sources; its own when None), sending back stored validators and not
    contacting URLs deferred by an earlier Retry-After, and put each page on `feed`, keyed by
    its target's position, as soon as it is fetched. Returns the count of each outcome."""
    known = [(t.url, states[t.url]) for t in targets if t.url in states]
    validators = {url: state.validators for url, state in known}
    not_before = {url: state.retry_after for url, state in known if state.retry_after}
    outcomes: Counter[str] = Counter()
    with nullcontext(fetcher) if fetcher is not None else Fetcher(policy) as shared:
        # closing(): when a put raises FeedClosed, the stream's threads are shut down here, not
        # whenever the traceback holding the generator is let go.
        with closing(iter_fetch_indexed(
            targets, shared, validators, not_before=not_before, now=now
        )) as pages:
            for position, page in pages:
                outcomes[str(page.status)] += 1
                feed.put(source_index, [(position, page)])
    return outcomes
