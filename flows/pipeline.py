"""The ingestion flow: discover -> fetch -> extract -> dedupe -> load, one Prefect task per source
or per batch (never per article: Prefect drops task-run records above a few thousand per run)."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task

import dedupe
from dedupe.records import Grouping
from extract.fetch import FetchPolicy, fetch_all
from extract.pool import clean_pages
from extract.records import Article, FetchedPage, Reason, Source, Target
from extract.sources import discover
from extract.urls import site_of
from flows.config import Settings, load_settings
from warehouse.store import RunCounts, UrlState, Warehouse

# Outcomes that are not failures: the page was fetched, or there was nothing new to fetch.
NOT_FAILURES = frozenset({Reason.OK, Reason.NOT_MODIFIED, Reason.DEFERRED})


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    warehouse: Path
    counts: RunCounts
    new_event_ids: tuple[str, ...] = ()
    updated_event_ids: tuple[str, ...] = ()
    failures_by_domain: dict[str, int] = field(default_factory=dict)


def new_run_id(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


@task(name="discover", task_run_name="discover-{source.name}", retries=0)
def discover_source(source: Source, policy: FetchPolicy) -> tuple[list[Target], list[FetchedPage]]:
    return discover(source, policy)


@task(name="fetch", task_run_name="fetch-{source_name}")
def fetch_source(
    source_name: str,
    targets: list[Target],
    policy: FetchPolicy,
    states: dict[str, UrlState],
    now: datetime,
) -> list[FetchedPage]:
    """Fetch one source's targets. URLs deferred by an earlier Retry-After are not contacted."""
    due: list[Target] = []
    deferred: list[FetchedPage] = []
    for t in targets:
        state = states.get(t.url)
        if state and state.retry_after and state.retry_after.replace(tzinfo=UTC) > now:
            deferred.append(
                FetchedPage(
                    url=t.url, final_url=t.url, source=t.source, status=Reason.DEFERRED,
                    fetched_at=now, retry_after=state.retry_after.replace(tzinfo=UTC),
                    detail="deferred by an earlier Retry-After", attempt=0,
                )
            )
        else:
            due.append(t)
    validators = {url: s.validators for url, s in states.items()}
    return deferred + fetch_all(due, policy, validators)


@task(name="extract", task_run_name="extract-{source_name}")
def extract_source(
    source_name: str, pages: list[FetchedPage], workers: int | None, timeout_s: float
) -> list[Article]:
    return clean_pages(pages, workers=workers, timeout_s=timeout_s)


@task(name="load-pages")
def load_pages(
    settings: Settings, run_id: str, pages: list[FetchedPage], articles: list[Article]
) -> set[str]:
    with Warehouse.open(settings.warehouse_path, publish=False) as wh:
        return wh.load_pages(run_id, pages, articles, datetime.now(UTC))


@task(name="dedupe")
def group_new(settings: Settings) -> Grouping:
    with Warehouse.open(settings.warehouse_path, publish=False) as wh:
        docs = wh.ungrouped_documents()
        prior = wh.dedupe_states() if docs else []
    return dedupe.group(docs, prior)


@task(name="load-events")
def load_grouping(settings: Settings, run_id: str, grouping: Grouping) -> tuple[int, int]:
    with Warehouse.open(settings.warehouse_path, publish=False) as wh:
        return wh.load_grouping(run_id, grouping, datetime.now(UTC))


def _copies(grouping: Grouping) -> int:
    """New articles that joined a copy group holding at least one other article."""
    sizes = Counter(s.copy_id for s in grouping.states if s.copy_id)
    return sum(
        1 for a in grouping.assignments if a.copy_id is not None and sizes[a.copy_id] > 1
    )


def _domain(url: str) -> str:
    return site_of(url) or "(local)"


def execute(settings: Settings) -> RunSummary:
    """One run of the pipeline inside the current Prefect flow run."""
    logger = get_run_logger()
    started = datetime.now(UTC)
    run_id = new_run_id(started)
    config_path = str(settings.config_path) if settings.config_path else None
    with Warehouse.open(settings.warehouse_path, publish=False) as wh:
        wh.start_run(run_id, started, config_path)
        states = wh.url_states()

    # discover and fetch: one task per source, submitted together so sources overlap.
    discovered = {s.name: discover_source.submit(s, settings.fetch) for s in settings.sources}
    pages: list[FetchedPage] = []
    fetch_futures = {}
    n_targets = 0
    for name, fut in discovered.items():
        targets, failures = fut.result()
        n_targets += len(targets)
        pages.extend(failures)
        fetch_futures[name] = fetch_source.submit(name, targets, settings.fetch, states, started)
    per_source_pages = {name: fut.result() for name, fut in fetch_futures.items()}
    logger.info("fetched %d pages from %d sources", sum(map(len, per_source_pages.values())),
                len(settings.sources))

    # extract: process pool inside each task; sources one after the other to keep cores busy
    # without oversubscribing them.
    articles: list[Article] = []
    for name, source_pages in per_source_pages.items():
        pages.extend(source_pages)
        articles.extend(
            extract_source(name, source_pages, settings.extract.workers, settings.extract.timeout_s)
        )

    new_ids = load_pages(settings, run_id, pages, articles)
    grouping = group_new(settings)
    n_events_new, n_events_updated = load_grouping(settings, run_id, grouping)

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
        n_fetched=sum(1 for p in pages if p.status is Reason.OK),
        n_not_modified=sum(1 for p in pages if p.status is Reason.NOT_MODIFIED),
        n_deferred=sum(1 for p in pages if p.status is Reason.DEFERRED),
        n_failed=sum(failures.values()),
        n_articles_new=len(new_ids),
        n_too_short=sum(1 for a in articles if a.status is Reason.TOO_SHORT and a.article_id in new_ids),
        n_copies=_copies(grouping),
        n_events_new=n_events_new,
        n_events_updated=n_events_updated,
        failures=dict(sorted(failures.items())),
    )
    with Warehouse.open(settings.warehouse_path, publish=True) as wh:
        wh.finish_run(run_id, datetime.now(UTC), counts)
    logger.info("run %s: %s", run_id, counts)
    return RunSummary(
        run_id=run_id,
        warehouse=settings.warehouse_path,
        counts=counts,
        failures_by_domain=dict(by_domain.most_common()),
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
    lines.append(f"  warehouse {summary.warehouse}")
    return "\n".join(lines)
