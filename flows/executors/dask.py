"""The Dask executor: every source discovered, every page fetched, then extraction in batches
(flows.scaleout.batches) as Prefect tasks on a Dask cluster. The stages run one after the other."""

from __future__ import annotations

import time

from prefect import get_run_logger

from extract.records import Article, FetchedPage
from flows import scaleout
from flows.config import Settings
from flows.executors import Extracted, SourceTasks
from flows.tasks import extract_batch, strip_body


def extract_on_dask(settings: Settings, pages: list[FetchedPage]) -> list[Article]:
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


def run(tasks: SourceTasks) -> Extracted:
    for fut in tasks.discoveries:
        tasks.record(fut)
    discover_done = time.perf_counter()
    for name in tasks.names:
        tasks.fetch(name)
    in_order = [page for _, page in sorted(tasks.feed, key=lambda kp: kp[0])]  # by PageKey
    tasks.raise_fetch_failure()
    fetch_done = time.perf_counter()
    articles = extract_on_dask(tasks.settings, in_order)
    # Nothing after extraction reads a page's body; holding them through dedupe and load
    # kept ~0.7 GB (10,000 pages of ~70 KiB, bench/bench_e2e.py) at the run's memory peak.
    pages = [strip_body(p) for p in in_order]
    del in_order
    return tasks.extracted(pages, articles, discover_done, fetch_done)
