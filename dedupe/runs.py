"""Grouping in runs, offline: the states one `group` call returns are the prior of the next,
as the flow keeps them in the warehouse between scheduled runs. Used by `newsdedup cluster
--runs` and `newsdedup eval clustering --runs` to score grouping the way users run it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from dedupe.grouping import group
from dedupe.records import Assignment, DocState, Document
from dedupe.settings import DEFAULT, GroupingSettings
from dedupe.window import as_utc, open_states, people_named, window_start


def cut(docs: Sequence[Document], n_runs: int) -> Iterator[Sequence[Document]]:
    """`docs` in order, cut into `n_runs` consecutive runs of (nearly) equal size."""
    if n_runs < 1:
        raise ValueError(f"runs = {n_runs}: must be at least 1")
    size = -(-len(docs) // n_runs) if docs else 1
    for start in range(0, len(docs), size):
        yield docs[start : start + size]


def group_in_runs(
    runs: Iterable[Sequence[Document]],
    settings: GroupingSettings = DEFAULT,
    storage_config: dict[str, Any] | None = None,
    open_days: float | None = None,
) -> dict[str, Assignment]:
    """Group each run onto the states the earlier runs left. Returns every document's final
    assignment: the rule and evidence of the run that placed it, the event and copy ids as
    they stand after the last run (an id merged away is resolved to its survivor).
    `open_days`: give each run only the open groups' states (open_states from window_start),
    as the scheduled flow does; None gives all."""
    states: dict[str, DocState] = {}
    placed: dict[str, Assignment] = {}
    dates: dict[str, datetime | None] = {}
    for run in runs:
        prior = list(states.values())
        # A guessed date is no event time (warehouse.schema.EVENT_AT): such a document counts
        # as undated here, open as the warehouse keeps it open by when it was first seen.
        run_dates = {d.doc_id: None if d.date_guessed else as_utc(d.published_at) for d in run}
        known = [w for w in run_dates.values() if w is not None]
        if open_days is not None and known:
            # Offline there is no clock: the run's latest date stands for "now".
            since = window_start(run, open_days, max(known))
            prior = open_states(prior, dates, since, people_named(run))
        dates.update(run_dates)
        grouping = group(run, prior, settings=settings, storage_config=storage_config)
        for s in grouping.states:
            states[s.doc_id] = s
        for a in grouping.assignments:
            if a.rule != "already_grouped":
                placed[a.doc_id] = a
    out = {}
    for doc_id, a in placed.items():
        now = states.get(doc_id)
        out[doc_id] = a if now is None else Assignment(
            doc_id, now.event_id, now.copy_id, a.rule, a.similarity, a.matched_doc_id
        )
    return out
