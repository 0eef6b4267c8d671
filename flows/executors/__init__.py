"""Where discovery, fetching and extraction run: `local.run` (one machine, the three stages
overlapped) or `dask.run` (every page fetched, then extraction in batches on a Dask cluster).
Both get a `SourceTasks` (the run's discover and fetch task runs, their pages on one PageFeed)
and return the same `Extracted`; the flow (flows/pipeline.py) does not know which ran."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from prefect.futures import PrefectFuture

from extract.fetch import Fetcher
from extract.records import Article, FetchedPage, Target
from flows.config import Settings
from flows.feed import FeedClosed, PageFeed
from flows.tasks import discover_source, fetch_source, fetch_timeout_s, quoted
from warehouse.store import UrlState

Discovered = tuple[list[Target], list[FetchedPage]]


@dataclass(frozen=True)
class Extracted:
    """What the first three stages made of a run's sources."""

    # Each source's targets and discovery failures, in the settings' order.
    discovered: dict[str, Discovered]
    # Every page fetched (bodies dropped: nothing after extraction reads them) and its article,
    # in PageKey order: the same order however the network answered.
    pages: list[FetchedPage]
    articles: list[Article]
    # Wall seconds. The stages overlap (fetching starts with the first source discovered,
    # extraction with the first page), so each is counted from the end of the one before to
    # its own end, and they add up to the stages' wall time.
    seconds: dict[str, float]


class SourceTasks:
    """A run's discover and fetch task runs: discovery submitted for every source at once,
    each source's fetch submitted (`fetch`) once its discovery is `record`ed, every page onto
    `feed`."""

    def __init__(
        self, settings: Settings, states_for: Callable[[list[Target]], dict[str, UrlState]],
        started: datetime, fetcher: Fetcher,
    ) -> None:
        self.settings = settings
        self.names = [s.name for s in settings.sources]
        self.feed = PageFeed(len(settings.sources))
        # The stored state of a source's URLs, read when its fetch is submitted: the URLs a
        # run discovers, never every URL the warehouse has seen.
        self._states_for = states_for
        self._started = started
        self._fetcher = fetcher
        self._discovered: dict[str, Discovered] = {}
        self._fetches: dict[str, PrefectFuture[Any]] = {}
        self._t0 = time.perf_counter()
        self.discoveries = {
            discover_source.submit(s, fetcher): s.name for s in settings.sources
        }

    def record(self, fut: PrefectFuture[Any]) -> str:
        """Keep a finished discovery's result; its source's name."""
        name = self.discoveries[fut]
        # An async task's future yields its value, not a coroutine (Prefect's stubs say
        # otherwise).
        self._discovered[name] = cast(Discovered, fut.result())
        return name

    def fetch(self, name: str) -> None:
        """Submit the fetch of a discovered source; its pages go onto `feed`."""
        targets = self._discovered[name][0]
        states = self._states_for(targets)
        fut = fetch_source.with_options(
            timeout_seconds=fetch_timeout_s(len(targets), self.settings.fetch)
        ).submit(name, self.names.index(name), quoted(targets), self.settings.fetch,
                 quoted(states), self._started, self.feed, self._fetcher)
        self._fetches[name] = fut
        self.feed.watch([fut])

    def raise_fetch_failure(self) -> None:
        _raise_fetch_failure(self._fetches.values())

    def extracted(
        self, pages: list[FetchedPage], articles: list[Article], discover_done: float,
        fetch_done: float,
    ) -> Extracted:
        done = time.perf_counter()
        return Extracted(
            discovered={name: self._discovered[name] for name in self.names},
            pages=pages,
            articles=articles,
            seconds={
                "discover": discover_done - self._t0,
                "fetch": max(0.0, fetch_done - discover_done),
                "extract": done - max(fetch_done, discover_done),
            },
        )


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
