"""The run's Prefect tasks and their retry policy. Each task is a thin wrapper: the work is
library code (extract/, dedupe/, warehouse/), so `task.fn(...)` tests it without Prefect.

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

import multiprocessing
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import anyio.to_thread
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import Task
from prefect.utilities.annotations import quote

import dedupe
from dedupe.records import Grouping
from dedupe.window import people_named, window_start
from extract.clean import clean_page
from extract.fetch import Fetcher
from extract.policy import FetchPolicy
from extract.pool import clean_pages, failed_article, iter_clean_pages
from extract.records import Article, FetchedPage, Reason, Source, Target
from extract.sources import discover
from flows import scaleout
from flows.config import DedupeSettings
from flows.feed import PageFeed, PageKey, fetch_into
from warehouse.errors import WarehouseBusy
from warehouse.store import UrlState, Warehouse

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
# quote(...): Prefect otherwise walks every element of every parameter looking for futures, which
# costs the flow thread CPU in proportion to the pages (seconds at thousands of pages; see
# bench/bench_e2e.py --profile). quote() is unwrapped before the task sees its argument.


def quoted(value: _V) -> _V:
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


def strip_body(page: FetchedPage) -> FetchedPage:
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
            kept.append(strip_body(page))
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


# The warehouse tasks take the run's one writer session (flows/pipeline.py opens it): a
# retried task continues on it, since a stage's transaction rolls back whole before the task
# fails.


@task(name="load-pages", **TASK_OPTIONS)
def load_pages(
    wh: Warehouse, run_id: str, pages: list[FetchedPage], articles: list[Article]
) -> set[str]:
    return wh.load_pages(run_id, pages, articles, datetime.now(UTC))


@task(name="dedupe", **TASK_OPTIONS)
def group_new(
    wh: Warehouse, settings: DedupeSettings, run_id: str
) -> tuple[Grouping, frozenset[str]]:
    """Group the articles not grouped yet. Returns the grouping and the ids of the events that
    existed before (every stored event has members with a grouping state)."""
    docs = wh.ungrouped_documents()
    # Only the open events' state: the window is time, not history (dedupe/window.py).
    since = window_start(docs, settings.open_days, datetime.now(UTC))
    # And the closed events a new report may follow up: those naming a person it names.
    prior = wh.dedupe_states(since, people_named(docs)) if docs else []
    known = frozenset(s.event_id for s in prior if s.event_id)
    storage = scaleout.redis_storage_config(settings, f"newsdedup:{run_id}")
    if storage is None:
        return dedupe.group(docs, prior), known
    try:
        return dedupe.group(docs, prior, storage_config=storage), known
    finally:
        scaleout.drop_redis_keys(storage)


@task(name="load-events", **TASK_OPTIONS)
def load_grouping(wh: Warehouse, run_id: str, grouping: Grouping) -> tuple[int, int]:
    return wh.load_grouping(run_id, grouping, datetime.now(UTC))
