"""The ingestion flow: discover -> fetch -> extract -> dedupe -> load, one Prefect task per source
or per batch (never per article: Prefect drops task-run records above a few thousand per run).

On the local executor the first three stages overlap: each source's fetch task is submitted as
soon as that source is discovered, and every fetch task hands its pages, as they arrive, to ONE
extraction pool (`extract.pool.iter_clean_pages` reads an iterator), so a slow sitemap holds up
only its own pages and extraction runs while the network is waited on. The feed is bounded
(FEED_MAX_BYTES, FEED_MAX_PAGES): where extraction is the slower side, fetching waits for it
instead of filling memory with pages. Dedupe and load follow, one after the other.
RunSummary.stage_seconds counts each stage as a span between milestones: "discover" until the
last source is discovered, "fetch" from then until the last page is fetched (when extraction
is the slower side, that includes waiting for room in the feed), "extract" what extraction had
left after that, then dedupe and load; they add up to the run's wall time, and "prefect" is
what the flow spent outside them (task orchestration, artifacts, events). On the Dask executor
the stages run one after the other (every source discovered, every page fetched, then batches
sent to the cluster).

Retries: page-level problems (a timeout, a 404, a robots refusal, a page that will not extract)
are rows with a reason, never exceptions, so a task only raises when something around the pages
broke. Only transient ones are retried (`is_transient`): the warehouse writer briefly held by
another process, a dropped connection to Redis or Dask. A bug or a bad setting fails at once.

Caching: none (NO_CACHE on every task). The safe cache is already there, below Prefect: each
URL's ETag/Last-Modified is kept in the warehouse and sent back (a 304 costs no extraction), and
an article whose content hash is unchanged is not re-grouped. A Prefect result cache would have
to hash and store every page body (megabytes per task) to save work the warehouse already
skips, and Prefect's default policy would hash those inputs on every call.

Timeouts: per discovery and per fetch task (`fetch_timeout_s`, from the settings), as a backstop
only: the fetcher bounds each request. Extraction has none of its own: the pool kills a worker
past one page's time limit, and its feed ends when the fetch tasks do (a sync task in a worker
thread could not be interrupted anyway). Loads and dedupe have none: a long load is a big load,
and killing it mid-transaction gains nothing.
"""

from __future__ import annotations

import importlib
import multiprocessing
import queue
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import anyio.to_thread
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.futures import PrefectFuture, as_completed
from prefect.tasks import Task
from prefect.utilities.annotations import quote

import dedupe
from dedupe.records import Grouping
from extract.clean import clean_page
from extract.fetch import Fetcher, iter_fetch_indexed
from extract.policy import FetchPolicy
from extract.pool import clean_pages, failed_article, iter_clean_pages, prestart
from extract.records import Article, FetchedPage, Reason, Source, Target
from extract.sources import discover
from extract.urls import site_of
from flows import reporting, scaleout
from flows.config import Settings, load_settings
from warehouse.errors import WarehouseBusy
from warehouse.store import RunCounts, UrlState, Warehouse, hold_run_lock

# Outcomes that are not failures: the page was fetched, or there was nothing new to fetch.
NOT_FAILURES = frozenset({Reason.OK, Reason.NOT_MODIFIED, Reason.DEFERRED})

STAGES = ("discover", "fetch", "extract", "dedupe", "load")

_V = TypeVar("_V")

# Two retries, 5 s then 30 s apart: a writer held by `newsdedup export` or a Redis restart is
# over within seconds; something still broken after 35 s is not transient.
TRANSIENT_RETRIES = 2
RETRY_DELAYS_S = [5, 30]
# Backstop for a discovery (a feed, or a sitemap tree of up to max_sitemaps documents, each
# bounded by total_timeout_s = 30 s and fetched one after the other): 100 x 30 s = 50 min.
DISCOVER_TIMEOUT_S = 3600
# Extra seconds on every computed backstop, for process start-up and slow CI.
TIMEOUT_SLACK_S = 120.0


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    warehouse: Path
    counts: RunCounts
    new_event_ids: tuple[str, ...] = ()
    updated_event_ids: tuple[str, ...] = ()
    failures_by_domain: dict[str, int] = field(default_factory=dict)
    # Wall seconds per stage (STAGES), plus "prefect" (total - sum of stages: orchestration,
    # artifacts, events) and "total" (the flow function, start to end).
    stage_seconds: dict[str, float] = field(default_factory=dict)


def new_run_id(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


# -- retries ---------------------------------------------------------------------------------


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: it may well work in a few seconds, with the same inputs."""
    if type(exc).__name__ == "TaskRunTimeoutError":
        return False  # our own backstop: trying the same work again would time out again
    if isinstance(exc, (WarehouseBusy, ConnectionError, TimeoutError)):
        return True
    module = type(exc).__module__
    if module.startswith("redis") and type(exc).__name__ in {
        "ConnectionError", "TimeoutError", "BusyLoadingError",
    }:
        return True
    # distributed.comm.core.CommClosedError: a Dask worker or scheduler connection dropped.
    return module.startswith("distributed") and type(exc).__name__ == "CommClosedError"


def retry_if_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect's retry_condition_fn: retry only transient failures."""
    try:
        state.result()
    except Exception as exc:  # the task's exception, re-raised by result()
        return is_transient(exc)
    return False


TASK_OPTIONS: dict[str, Any] = {
    "retries": TRANSIENT_RETRIES,
    "retry_delay_seconds": RETRY_DELAYS_S,
    "retry_condition_fn": retry_if_transient,
    "cache_policy": NO_CACHE,
}


def fetch_timeout_s(n_targets: int, policy: FetchPolicy) -> float:
    """Backstop for one source's fetch: every request at its full time limit, every retry
    taken, the per-host delay between them, per_host_concurrency at a time (a source is often
    one host). 1,000 targets at the defaults: 1000 x (30 x 2 + 1) / 2 = 8.5 h; the sample's 10
    targets: 5 min."""
    per_request = policy.total_timeout_s * (policy.retries + 1) + policy.per_host_delay_s
    return n_targets * per_request / max(1, policy.per_host_concurrency) + TIMEOUT_SLACK_S


# -- tasks ------------------------------------------------------------------------------------

# Big task arguments (targets, URL states, pages, articles, the grouping) are passed as
# quote(...): Prefect otherwise walks every element of every parameter looking for futures,
# which cost 4.8 s of the flow thread's CPU at 2,000 pages (cProfile, bench/bench_e2e.py
# --profile), ~25 s at 10,000. quote() is unwrapped before the task sees its argument.


def _quoted(value: _V) -> _V:
    """quote(value), typed as the value itself: what the task receives."""
    return cast(_V, quote(value))


# discover and fetch are async tasks around blocking library calls run in a thread: Prefect can
# enforce timeout_seconds only by cancelling an await (a sync task submitted to a worker thread
# cannot be interrupted; Prefect warns so). When the backstop fires the task fails at once and
# the abandoned thread ends with the run's process.
@task(name="discover", task_run_name="discover-{source.name}", timeout_seconds=DISCOVER_TIMEOUT_S,
      **TASK_OPTIONS)
async def discover_source(
    source: Source, fetcher: Fetcher
) -> tuple[list[Target], list[FetchedPage]]:
    targets, failures = await anyio.to_thread.run_sync(discover, source, fetcher)
    get_run_logger().info(
        "%s: %d targets, %d discovery failures", source.name, len(targets), len(failures)
    )
    return targets, failures


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
        for position, page in iter_fetch_indexed(
            targets, shared, validators, not_before=not_before, now=now
        ):
            outcomes[str(page.status)] += 1
            feed.put(source_index, [(position, page)])
    return outcomes


@task(name="fetch", task_run_name="fetch-{source_name}", **TASK_OPTIONS)
async def fetch_source(
    source_name: str,
    source_index: int,
    targets: list[Target],
    policy: FetchPolicy,
    states: dict[str, UrlState],
    now: datetime,
    feed: PageFeed,
    fetcher: Fetcher,
) -> dict[str, int]:
    """Fetch one source's targets onto `feed` with the run's `fetcher` (timeout_seconds set per
    call: fetch_timeout_s). Returns the count of each outcome; the pages themselves go to the
    feed only, so that no Prefect result holds their bodies."""
    outcomes = await anyio.to_thread.run_sync(
        fetch_into, feed, source_index, targets, policy, states, now, fetcher
    )
    get_run_logger().info("%s: %s", source_name, dict(sorted(outcomes.items())))
    return dict(outcomes)


def _strip(page: FetchedPage) -> FetchedPage:
    return replace(page, body=b"") if page.body else page


# Not retried: the feed is consumed once, so a second attempt would find it empty.
@task(name="extract", task_run_name="extract-{label}", **{**TASK_OPTIONS, "retries": 0})
def extract_feed(
    label: str, feed: PageFeed, workers: int | None, timeout_s: float
) -> tuple[list[FetchedPage], list[Article]]:
    """Every page on `feed`, as it arrives, on the local process pool (every core, a hard limit
    per page). Returns the pages without their bodies and their articles, both in PageKey
    order. A body lives only until its page is extracted: the pool holds the page, the list
    kept here a copy without the body."""
    keys: list[PageKey] = []
    kept: list[FetchedPage] = []

    def pages() -> Iterator[FetchedPage]:
        for key, page in feed:
            keys.append(key)
            kept.append(_strip(page))
            yield page

    try:
        articles = list(iter_clean_pages(pages(), workers=workers, timeout_s=timeout_s))
    finally:
        feed.close()  # fetch tasks still running fail at once rather than wait for room
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return [kept[i] for i in order], [articles[i] for i in order]


def _extract_in_process(page: FetchedPage) -> Article:
    try:
        article = clean_page(page)
    except Exception as exc:  # the page's failure, recorded like the pool records it
        return failed_article(page, Reason.EXTRACTION_FAILED, f"{type(exc).__name__}: {exc}"[:300])
    return article if article.url == page.url else replace(article, url=page.url)


@task(name="extract-batch", task_run_name="extract-batch-{index}", **TASK_OPTIONS)
def extract_batch(index: int, pages: list[FetchedPage], timeout_s: float) -> list[Article]:
    """One batch on a Dask worker: a one-process pool (so a page that hangs is killed after
    timeout_s), or, where the worker is a daemon and may not start processes (a remote
    cluster's default), in the worker itself, bounded by the task's timeout instead."""
    if multiprocessing.current_process().daemon:
        return [_extract_in_process(p) for p in pages]
    return clean_pages(pages, workers=1, timeout_s=timeout_s)


@task(name="load-pages", **TASK_OPTIONS)
def load_pages(
    settings: Settings, run_id: str, pages: list[FetchedPage], articles: list[Article]
) -> set[str]:
    with Warehouse.open(settings.warehouse_path, publish=False) as wh:
        return wh.load_pages(run_id, pages, articles, datetime.now(UTC))


@task(name="dedupe", **TASK_OPTIONS)
def group_new(settings: Settings, run_id: str) -> tuple[Grouping, frozenset[str]]:
    """Group the articles not grouped yet. Returns the grouping and the ids of the events that
    existed before (every stored event has members with a grouping state)."""
    with Warehouse.open(settings.warehouse_path, publish=False) as wh:
        docs = wh.ungrouped_documents()
        prior = wh.dedupe_states() if docs else []
    known = frozenset(s.event_id for s in prior if s.event_id)
    storage = scaleout.redis_storage_config(settings.dedupe, f"newsdedup:{run_id}")
    if storage is None:
        return dedupe.group(docs, prior), known
    try:
        return dedupe.group(docs, prior, storage_config=storage), known
    finally:
        scaleout.drop_redis_keys(storage)


@task(name="load-events", **TASK_OPTIONS)
def load_grouping(settings: Settings, run_id: str, grouping: Grouping) -> tuple[int, int]:
    with Warehouse.open(settings.warehouse_path, publish=False) as wh:
        return wh.load_grouping(run_id, grouping, datetime.now(UTC))


# -- the run ----------------------------------------------------------------------------------


def _copies(grouping: Grouping) -> int:
    """New articles that joined a copy group holding at least one other article."""
    sizes = Counter(s.copy_id for s in grouping.states if s.copy_id)
    return sum(
        1 for a in grouping.assignments if a.copy_id is not None and sizes[a.copy_id] > 1
    )


def _warm_up_grouping() -> None:
    """Import the grouping code (NumPy, SciPy, datasketch, wordfreq: ~0.7 s on one core) in a
    background thread while extraction keeps both cores busy. `import dedupe` leaves it out so
    that a run's first seconds, when nothing else can run yet, do not wait for it, and imported
    at the dedupe stage it would again have one core to itself."""
    threading.Thread(target=importlib.import_module, args=("dedupe.grouping",),
                     name="newsdedup-import-grouping", daemon=True).start()


def _discovered(fut: PrefectFuture[Any]) -> tuple[list[Target], list[FetchedPage]]:
    # An async task's future yields its value, not a coroutine (Prefect's stubs say otherwise).
    return cast(tuple[list[Target], list[FetchedPage]], fut.result())


def _raise_fetch_failure(futures: Iterable[PrefectFuture[Any]]) -> None:
    """A fetch task's failure fails the run (its error, as Prefect re-raises it). When one
    fetch task fails the feed ends, and the others fail with FeedClosed: the first other
    error is the cause."""
    closed: FeedClosed | None = None
    for fut in futures:
        try:
            # An async task's future yields its value, not a coroutine (Prefect's stubs say
            # otherwise).
            cast(PrefectFuture[dict[str, int]], fut).result()
        except FeedClosed as exc:
            closed = closed or exc
    if closed is not None:
        raise closed


def _label(names: list[str]) -> str:
    """A task-run name for several sources: `extract-a+b`, `extract-a+b+3-more`."""
    shown = "+".join(names[:2])
    return shown + (f"+{len(names) - 2}-more" if len(names) > 2 else "")


def _domain(url: str) -> str:
    return site_of(url) or "(local)"


class _Clock:
    """Wall seconds per stage."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0

    def summary(self) -> dict[str, float]:
        total = time.perf_counter() - self.started
        out = {k: round(v, 3) for k, v in self.seconds.items()}
        out["prefect"] = round(max(0.0, total - sum(self.seconds.values())), 3)
        out["total"] = round(total, 3)
        return out


def _extract_on_dask(settings: Settings, pages: list[FetchedPage]) -> list[Article]:
    """Every page, in batches (scaleout.BATCH_PAGES) as Prefect tasks on a Dask cluster, in
    input order. The task runner is entered here, not on the flow, so that only extraction
    goes to the cluster and a local run pays nothing for Dask."""
    ex = settings.extract
    logger = get_run_logger()
    parts = scaleout.batches(pages)
    if not parts:
        return []
    # No timeout_seconds on extract_batch: it runs in a Dask worker's thread, where Prefect
    # cannot interrupt it; the one-process pool in extract_batch bounds each page instead.
    with scaleout.dask_environment(), scaleout.dask_task_runner(ex) as runner:
        logger.info("extracting %d pages in %d batches on Dask", len(pages), len(parts))
        futures = [
            # Not quote(batch): prefect-dask hands the task the annotation's contents wrongly.
            runner.submit(extract_batch, {"index": i, "pages": batch, "timeout_s": ex.timeout_s})
            for i, batch in enumerate(parts)
        ]
        return [a for fut in futures for a in fut.result()]


# The GIL's switch interval while sources are being discovered (Python's default: 5 ms). A
# thread woken by its socket waits for the GIL up to the interval whenever another thread
# computes. At 5 ms, while discovery parsed four 1,250-entry feeds, the fetch threads of the
# sources already discovered got 14 pages/s through and the extraction workers sat idle: the
# machine was busy 10 s into the 10,000-page benchmark run; at 0.5 ms, 7 s (traced). Only during
# discovery: with ~130 fetch threads and nothing parsing, 0.5 ms made fetching cost ~0.3 ms more
# CPU a page (2.3 -> 2.6 ms, 4,000 pages, eight sources at once).
SWITCH_INTERVAL_S = 0.0005


@contextmanager
def _switch_interval(seconds: float) -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def execute(settings: Settings) -> RunSummary:
    """One run of the pipeline inside the current Prefect flow run. Holds the warehouse's run
    lock throughout: a second run on the same warehouse fails at once with WarehouseBusy."""
    if settings.extract.executor == "local":
        prestart()  # `newsdedup run` has started it already, before importing Prefect
    with hold_run_lock(settings.warehouse_path):
        return _execute_locked(settings)


def _execute_locked(settings: Settings) -> RunSummary:
    logger = get_run_logger()
    clock = _Clock()
    started = datetime.now(UTC)
    run_id = new_run_id(started)
    progress = reporting.Progress(run_id)
    config_path = str(settings.config_path) if settings.config_path else None
    with clock.stage("load"), Warehouse.open(settings.warehouse_path, publish=False) as wh:
        wh.start_run(run_id, started, config_path)
        interrupted = wh.mark_interrupted_runs(run_id)
        states = wh.url_states()
    if interrupted:
        logger.warning("%d earlier run(s) had been killed before finishing", interrupted)
    try:
        # The run's fetcher: its per-host and overall limits and robots.txt cache hold across
        # sources (two sources on one site share that site's slots).
        with Fetcher(settings.fetch) as fetcher:
            return _stages(settings, run_id, started, states, clock, progress, fetcher)
    except BaseException:
        with Warehouse.open(settings.warehouse_path, publish=False) as wh:
            wh.finish_run(run_id, datetime.now(UTC), RunCounts(), status="failed")
        raise


def _stages(
    settings: Settings,
    run_id: str,
    started: datetime,
    states: dict[str, UrlState],
    clock: _Clock,
    progress: reporting.Progress,
    fetcher: Fetcher,
) -> RunSummary:
    logger = get_run_logger()
    pages: list[FetchedPage] = []

    ex = settings.extract
    names = [s.name for s in settings.sources]
    discovered: dict[str, tuple[list[Target], list[FetchedPage]]] = {}
    fetches: dict[str, PrefectFuture[Any]] = {}
    feed = PageFeed(len(settings.sources))
    t0 = time.perf_counter()
    discoveries = {discover_source.submit(s, fetcher): s.name for s in settings.sources}

    def fetch(name: str) -> None:
        """Submit the fetch of a discovered source; its pages go onto `feed`."""
        targets = discovered[name][0]
        fut = fetch_source.with_options(
            timeout_seconds=fetch_timeout_s(len(targets), settings.fetch)
        ).submit(name, names.index(name), _quoted(targets), settings.fetch, _quoted(states),
                 started, feed, fetcher)
        fetches[name] = fut
        feed.watch([fut])

    if ex.executor == "dask":
        # Every source discovered, every page fetched, then batches to the cluster.
        for fut, name in discoveries.items():
            discovered[name] = _discovered(fut)
        discover_done = time.perf_counter()
        for name in names:
            fetch(name)
        in_order = [page for _, page in sorted(feed, key=lambda kp: kp[0])]  # by PageKey
        _raise_fetch_failure(fetches.values())
        fetch_done = time.perf_counter()
        articles = _extract_on_dask(settings, in_order)
        # Nothing after extraction reads a page's body; holding them through dedupe and load
        # kept ~0.7 GB (10,000 pages of ~70 KiB, bench/bench_e2e.py) at the run's memory peak.
        pages.extend(_strip(p) for p in in_order)
        del in_order
    else:
        # One pool for every source, fed as pages arrive; each source is fetched as soon as it
        # is discovered, so a slow sitemap holds up only its own pages. The extraction task
        # runs beside this loop; a page is bounded by its time limit in the pool, the feed by
        # the fetch tasks' backstops.
        extraction = extract_feed.submit(_label(names), feed, ex.workers, ex.timeout_s)
        try:
            with _switch_interval(SWITCH_INTERVAL_S):
                for fut in as_completed(list(discoveries)):
                    name = discoveries[fut]
                    discovered[name] = _discovered(fut)
                    fetch(name)
        except BaseException:
            feed.abandon()
            extraction.wait()
            raise
        discover_done = time.perf_counter()
        _warm_up_grouping()
        fetched, articles = extraction.result()
        _raise_fetch_failure(fetches.values())
        fetch_done = feed.fetch_finished_at or time.perf_counter()
        pages.extend(fetched)
        del fetched
    fetcher.close()  # every fetch task is final: no keep-alive sockets held through dedupe
    # Stages overlap (fetching starts with the first source discovered, extraction with the
    # first page): each is counted from the end of the one before to its own end, so that they
    # add up to the run's wall time.
    done = time.perf_counter()
    clock.seconds["discover"] += discover_done - t0
    clock.seconds["fetch"] += max(0.0, fetch_done - discover_done)
    clock.seconds["extract"] += done - max(fetch_done, discover_done)
    discovered = {name: discovered[name] for name in names}  # in the settings' order
    n_targets = sum(len(targets) for targets, _ in discovered.values())
    pages[:0] = [p for _, not_discovered in discovered.values() for p in not_discovered]
    logger.info("discover: %d targets from %d sources in %.2f s", n_targets,
                len(settings.sources), clock.seconds["discover"])
    progress.stage_done("discover", f"{n_targets} targets")
    n_ok = sum(1 for p in pages if p.status is Reason.OK)
    logger.info("fetch: %d pages fetched of %d in %.2f s", n_ok, len(pages), clock.seconds["fetch"])
    progress.stage_done("fetch", f"{n_ok} pages fetched")
    n_extracted = sum(1 for a in articles if a.status is Reason.OK)
    logger.info("extract: %d articles from %d pages in %.2f s (%s; %s)", n_extracted,
                len(articles), clock.seconds["extract"], ex.executor,
                "after fetch, one after the other" if ex.executor == "dask"
                else "after the last page was fetched; extraction ran alongside fetch before")
    progress.stage_done("extract", f"{n_extracted} articles")

    with clock.stage("load"):
        new_ids = load_pages(settings, run_id, _quoted(pages), _quoted(articles))
    with clock.stage("dedupe"):
        grouping, known_events = group_new(settings, run_id)
    logger.info("dedupe: %d articles grouped into %d touched events in %.2f s (LSH in %s)",
                len(grouping.assignments), len(grouping.events), clock.seconds["dedupe"],
                settings.dedupe.lsh_storage)
    progress.stage_done("dedupe", f"{len(grouping.events)} events touched")

    with clock.stage("load"):
        n_events_new, n_events_updated = load_grouping(settings, run_id, _quoted(grouping))
    # The events are in the warehouse now: announce the new ones at once (the largest
    # reporting.MAX_EVENT_NOTICES, then one event for the rest), so that Prefect's events worker
    # sends them while the run is finished and its artifacts published, not after the flow
    # returns.
    rows = reporting.event_rows(grouping.events, frozenset(
        e.event_id for e in grouping.events if e.event_id not in known_events
    ))
    n_emitted = reporting.emit_new_events(rows, run_id)

    # A URL fails at most once: at fetch, or (its page fetched fine) at extraction.
    failed_at_fetch = {p.url for p in pages if p.status not in NOT_FAILURES}
    failed = [(p.url, p.status) for p in pages if p.status not in NOT_FAILURES] + [
        (a.url, a.status)
        for a in articles
        if a.status not in NOT_FAILURES
        and a.status is not Reason.TOO_SHORT
        and a.url not in failed_at_fetch
    ]
    failures = Counter(str(status) for _, status in failed)
    by_domain = Counter(_domain(url) for url, _ in failed)
    counts = RunCounts(
        n_targets=n_targets,
        n_fetched=n_ok,
        n_not_modified=sum(1 for p in pages if p.status is Reason.NOT_MODIFIED),
        n_deferred=sum(1 for p in pages if p.status is Reason.DEFERRED),
        n_failed=sum(failures.values()),
        n_articles_new=len(new_ids),
        n_too_short=sum(
            1 for a in articles if a.status is Reason.TOO_SHORT and a.article_id in new_ids
        ),
        n_copies=_copies(grouping),
        n_events_new=n_events_new,
        n_events_updated=n_events_updated,
        failures=dict(sorted(failures.items())),
    )
    with clock.stage("load"), Warehouse.open(settings.warehouse_path, publish=True) as wh:
        wh.finish_run(run_id, datetime.now(UTC), counts)
    progress.stage_done("load", f"{n_events_new} new, {n_events_updated} updated events")

    reporting.publish_run(
        run_id, counts, dict(by_domain.most_common()), rows, clock.summary(),
        str(settings.warehouse_path),
    )
    stage_seconds = clock.summary()
    logger.info("run %s: %s", run_id, counts)
    logger.info("stage seconds: %s; %d Prefect events emitted for %d new events",
                stage_seconds, n_emitted, n_events_new)
    return RunSummary(
        run_id=run_id,
        warehouse=settings.warehouse_path,
        counts=counts,
        new_event_ids=tuple(r.event_id for r in rows if r.status == "new"),
        updated_event_ids=tuple(r.event_id for r in rows if r.status == "updated"),
        failures_by_domain=dict(by_domain.most_common()),
        stage_seconds=stage_seconds,
    )


@flow(name="newsdedup-ingest", log_prints=True)
def ingest(config_path: str | None = None) -> RunSummary:
    """Discover, fetch, extract, group and load every configured source once. Takes the path
    of the settings file (not the settings) so that a deployment's parameters stay plain."""
    settings = load_settings(Path(config_path) if config_path else None)
    return execute(settings)


def summarize(summary: RunSummary) -> str:
    c = summary.counts
    lines = [
        f"run {summary.run_id}",
        f"  targets {c.n_targets}, fetched {c.n_fetched}, not modified {c.n_not_modified},"
        f" deferred {c.n_deferred}, failed {c.n_failed}",
    ]
    if c.failures:
        lines.append("  failed by reason: " + ", ".join(f"{k} {v}" for k, v in c.failures.items()))
    lines.append(
        f"  new articles {c.n_articles_new} (too short {c.n_too_short}), copies {c.n_copies},"
        f" new events {c.n_events_new}, updated events {c.n_events_updated}"
    )
    if summary.stage_seconds:
        lines.append(
            "  seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in summary.stage_seconds.items())
        )
    lines.append(f"  warehouse {summary.warehouse}")
    return "\n".join(lines)
