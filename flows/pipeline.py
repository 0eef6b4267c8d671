"""The ingestion flow: discover -> fetch -> extract -> dedupe -> load, one Prefect task per source
or per batch (never per article: Prefect drops task-run records above a few thousand per run).

What a run does, in order (`_execute_locked`, then `_run`), all on one warehouse session
(`wh`, opened once a run):

    1. start_run                           the warehouse records the run
    2. executor.run(SourceTasks(...))      discover, fetch (each source with its URLs' state),
                                           extract: flows/executors/ (local:
                                           overlapped, one extraction pool; dask: one after
                                           the other, extraction on the cluster)
    3. load_pages                          fetch outcomes and articles into the warehouse
    4. group_new, load_grouping            dedupe the new articles, store their events
    5. finish_run, publish, maintain       counts, the snapshot readers see, the lake's daily
                                           maintenance
    6. publish_run                         artifacts for the Prefect UI

The tasks and their retry policy are in flows/tasks.py, the page feed between fetching and
extraction in flows/feed.py. RunSummary.stage_seconds counts each stage as a span between
milestones: "discover" until the last source is discovered, "fetch" from then until the last
page is fetched (when extraction is the slower side, that includes waiting for room in the
feed), "extract" what extraction had left after that, then dedupe and load; they add up to the
run's wall time, and "prefect" is what the flow spent outside them (task orchestration,
artifacts, events).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger

from dedupe.records import Grouping
from extract.fetch import Fetcher
from extract.pool import prestart
from extract.records import Article, FetchedPage, Reason
from flows import interrupt, reporting
from flows.config import Settings, load_settings
from flows.executors import SourceTasks, dask, local
from flows.failures import SourceFailure, describe, failed_sources
from flows.tasks import group_new, load_grouping, load_pages, quoted
from warehouse.store import RunCounts, Warehouse, hold_run_lock

STAGES = ("discover", "fetch", "extract", "dedupe", "load")


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
    n_sources: int = 0
    failed_sources: tuple[SourceFailure, ...] = ()

    @property
    def every_source_failed(self) -> bool:
        return self.n_sources > 0 and len(self.failed_sources) == self.n_sources


def new_run_id(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


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

    def add(self, seconds: dict[str, float]) -> None:
        for name, value in seconds.items():
            self.seconds[name] += value

    def summary(self) -> dict[str, float]:
        total = time.perf_counter() - self.started
        out = {k: round(v, 3) for k, v in self.seconds.items()}
        out["prefect"] = round(max(0.0, total - sum(self.seconds.values())), 3)
        out["total"] = round(total, 3)
        return out


def _copies(grouping: Grouping) -> int:
    """New articles that joined a copy group holding at least one other article."""
    sizes = Counter(s.copy_id for s in grouping.states if s.copy_id)
    return sum(
        1 for a in grouping.assignments if a.copy_id is not None and sizes[a.copy_id] > 1
    )


# Lake maintenance (compaction, snapshot expiry, file cleanup) once a day, after a run has
# published: each run adds a few files per table, and a day's worth merge in seconds
# (docs/benchmarks.md, "Maintenance").
MAINTAIN_EVERY_HOURS = 24.0


def _maintain(wh: Warehouse, keep_days: float) -> None:
    """Maintain the lake when a day has passed since the last time. Published (the row in
    `maintenance` is then visible); the data readers see is the same before and after."""
    now = datetime.now(UTC)
    if not wh.maintenance_due(now, MAINTAIN_EVERY_HOURS):
        return
    report = wh.maintain(now, keep_days)
    wh.publish()
    get_run_logger().info("maintenance: %s", report)


def execute(settings: Settings) -> RunSummary:
    """One run of the pipeline inside the current Prefect flow run. Holds the warehouse's run
    lock and its writer throughout: a second run on the same warehouse fails at once with
    WarehouseBusy. Readers are not held up: they read the published snapshot."""
    if settings.extract.executor == "local":
        prestart()  # `newsdedup run` has started it already, before importing Prefect
    with hold_run_lock(settings.warehouse_path):
        return _execute_locked(settings)


def _execute_locked(settings: Settings) -> RunSummary:
    logger = get_run_logger()
    clock = _Clock()
    started = datetime.now(UTC)
    run_id = new_run_id(started)
    config_path = str(settings.config_path) if settings.config_path else None
    # The run's one warehouse session, passed to every stage: opening the lake loads its
    # extensions, attaches its catalog and takes the writer's lock file, so a run does it
    # once. Each stage is still its own transaction (one lake commit), readers read the
    # published snapshot meanwhile, and an interrupt records the run through it.
    with ExitStack() as stack:
        with clock.stage("load"):
            wh = stack.enter_context(Warehouse.open(settings.warehouse_path, publish=False))
            wh.start_run(run_id, started, config_path)
            interrupted = wh.mark_interrupted_runs(run_id)
        if interrupted:
            logger.warning("%d earlier run(s) had been killed before finishing", interrupted)
        try:
            with interrupt.running(wh, run_id), interrupt.armed():
                return _run(settings, wh, run_id, started, clock)
        except BaseException:
            _record_failed(wh, run_id)
            raise


def _record_failed(wh: Warehouse, run_id: str) -> None:
    """Record the run as failed on its session (a failed stage has rolled back already). When
    even that fails, the run's own error is the one to see: the next run marks it interrupted."""
    try:
        wh.finish_run(run_id, datetime.now(UTC), RunCounts(), status="failed")
    except Exception as exc:  # noqa: BLE001 - the error being raised matters more
        get_run_logger().warning("could not record run %s as failed: %s", run_id, exc)


def _report_extracted(
    settings: Settings,
    n_targets: int,
    pages: list[FetchedPage],
    articles: list[Article],
    clock: _Clock,
    progress: reporting.Progress,
) -> None:
    """Log and show (Prefect progress artifact) the first three stages' outcomes."""
    logger = get_run_logger()
    ex = settings.extract
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


def _run(
    settings: Settings,
    wh: Warehouse,
    run_id: str,
    started: datetime,
    clock: _Clock,
) -> RunSummary:
    logger = get_run_logger()
    progress = reporting.Progress(run_id)
    executor = dask if settings.extract.executor == "dask" else local
    # The run's fetcher: its per-host and overall limits and robots.txt cache hold across
    # sources and their discovery (two sources on one site share that site's slots). Closed
    # once every fetch task is final: no keep-alive sockets held through dedupe.
    # Each source's fetch is handed the state of its own URLs, read on the run's session.
    with Fetcher(settings.fetch) as fetcher:
        extracted = executor.run(SourceTasks(
            settings, lambda targets: wh.url_states(t.url for t in targets), started, fetcher,
        ))
    clock.add(extracted.seconds)
    # Discovery failures first, then the pages, as the warehouse has always received them.
    pages = [p for _, failures in extracted.discovered.values() for p in failures]
    pages += extracted.pages
    articles = extracted.articles
    n_targets = sum(len(targets) for targets, _ in extracted.discovered.values())
    del extracted
    _report_extracted(settings, n_targets, pages, articles, clock, progress)

    with clock.stage("load"):
        load_pages(wh, run_id, quoted(pages), quoted(articles))
    with clock.stage("dedupe"):
        grouping, known_events = group_new(wh, settings.dedupe, run_id)
    logger.info("dedupe: %d articles grouped into %d touched events in %.2f s (LSH in %s)",
                len(grouping.assignments), len(grouping.events), clock.seconds["dedupe"],
                settings.dedupe.lsh_storage)
    progress.stage_done("dedupe", f"{len(grouping.events)} events touched")

    with clock.stage("load"):
        n_events_new, n_events_updated = load_grouping(wh, run_id, quoted(grouping))
    # The events are in the warehouse now: announce the new ones at once (the largest
    # reporting.MAX_EVENT_NOTICES, then one event for the rest), so that Prefect's events worker
    # sends them while the run is finished and its artifacts published, not after the flow
    # returns.
    rows = reporting.event_rows(grouping.events, frozenset(
        e.event_id for e in grouping.events if e.event_id not in known_events
    ))
    n_emitted = reporting.emit_new_events(rows, run_id)

    # The counts are the warehouse's (SQL over the rows just loaded: one definition of a
    # failure, the `failures` view), with what only the flow knows added.
    with clock.stage("load"):
        counts = replace(
            wh.count_run(run_id), n_targets=n_targets, n_copies=_copies(grouping),
            n_events_new=n_events_new, n_events_updated=n_events_updated,
        )
        by_domain = wh.failures_by_site(run_id)
        wh.finish_run(run_id, datetime.now(UTC), counts)
        wh.publish()
    _maintain(wh, settings.keep_days)
    progress.stage_done("load", f"{n_events_new} new, {n_events_updated} updated events")

    reporting.publish_run(
        run_id, counts, by_domain, rows, clock.summary(),
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
        failures_by_domain=by_domain,
        stage_seconds=stage_seconds,
        n_sources=len(settings.sources),
        failed_sources=tuple(failed_sources([s.name for s in settings.sources], pages)),
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
        f"  new articles {c.n_articles_new} (too short {c.n_too_short}, {c.n_copies} share"
        " their text with another),"
        f" new events {c.n_events_new}, updated events {c.n_events_updated}"
    )
    if summary.stage_seconds:
        lines.append(
            "  seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in summary.stage_seconds.items())
        )
    lines.append(f"  warehouse {summary.warehouse}")
    lines += describe(summary.failed_sources, summary.n_sources)
    return "\n".join(lines)
