"""What a run shows in the Prefect UI: a progress bar that moves stage by stage, a markdown
summary, a table of new and updated events, and one Prefect event per new event (up to
MAX_EVENT_NOTICES a run) so that an automation can alert on it. The builders are plain
functions of plain records (tested without Prefect); `publish_run` and `Progress` make the API
calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.events import emit_event

from dedupe.records import Event
from warehouse.store import RunCounts

# Artifact keys: lowercase letters, digits and dashes (Prefect's rule). A keyed artifact also
# appears on the UI's Artifacts page, where each key keeps its history across runs.
PROGRESS_KEY = "newsdedup-progress"
SUMMARY_KEY = "newsdedup-run-summary"
EVENTS_KEY = "newsdedup-events"

# Prefect event names and resource ids, for automations ("when newsdedup.event.created ...").
EVENT_CREATED = "newsdedup.event.created"
EVENT_RESOURCE_PREFIX = "newsdedup.event."
EVENTS_CREATED = "newsdedup.events.created"  # the rest of a run's new events, in one
RUN_RESOURCE_PREFIX = "newsdedup.run."

# `newsdedup.event.created` events per run. A first run or a backfill creates thousands of
# events at once (4,399 in the 10,000-page benchmark): one Prefect event each would fire an
# automation thousands of times and bury everything else in the UI's event feed, and each costs
# ~0.8 ms of the run's CPU and about as much of the server's. Past this many, the largest new
# events get theirs and one `newsdedup.events.created` event says how many more the run made.
MAX_EVENT_NOTICES = 500

# Rows in the events table. The UI renders every row on one page; 500 rows is ~1 MB of JSON in
# the artifact and still scrolls smoothly. The markdown summary says how many were left out.
MAX_TABLE_ROWS = 500

# The stages in order, with the share of the progress bar reached when each one ends. Shares
# follow where the time goes on the bundled sample and on the 181-page bench run (fetch and
# extract dominate; discover and dedupe are short; load includes publishing the snapshot).
STAGE_PROGRESS: dict[str, float] = {
    "discover": 10.0,
    "fetch": 45.0,
    "extract": 75.0,
    "dedupe": 90.0,
    "load": 100.0,
}


@dataclass(frozen=True)
class EventRow:
    """One line of the events table."""

    event_id: str
    status: str  # "new" or "updated"
    title: str
    date: str
    articles: int
    sources: int


def event_rows(events: Sequence[Event], new_ids: frozenset[str]) -> list[EventRow]:
    """New events first, then updated ones; largest first within each."""
    rows = [
        EventRow(
            event_id=e.event_id,
            status="new" if e.event_id in new_ids else "updated",
            title=e.title,
            date=e.event_date
            or (e.first_published_at.date().isoformat() if e.first_published_at else ""),
            articles=len(e.member_ids),
            sources=e.n_sources,
        )
        for e in events
    ]
    rows.sort(key=lambda r: (r.status != "new", -r.articles, r.date, r.event_id))
    return rows


def events_table(rows: Sequence[EventRow]) -> list[dict[str, Any]]:
    # Short columns first: the UI sizes the table to the page, and a long title pushes the
    # columns after it out of sight.
    return [
        {
            "status": r.status, "date": r.date, "articles": r.articles, "sources": r.sources,
            "title": r.title, "event_id": r.event_id,
        }
        for r in rows[:MAX_TABLE_ROWS]
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(
    run_id: str,
    counts: RunCounts,
    failures_by_domain: Mapping[str, int],
    rows: Sequence[EventRow],
    stage_seconds: Mapping[str, float],
    warehouse: str,
) -> str:
    """The run's summary as markdown: what came in, what was new, what failed and why."""
    c = counts
    out = [
        f"# newsdedup run `{run_id}`",
        "",
        "| pages | count |",
        "|---|---:|",
        f"| targets discovered | {c.n_targets} |",
        f"| fetched | {c.n_fetched} |",
        f"| not modified (304) | {c.n_not_modified} |",
        f"| deferred (Retry-After) | {c.n_deferred} |",
        f"| failed | {c.n_failed} |",
        "",
        "| found | count |",
        "|---|---:|",
        f"| new articles | {c.n_articles_new} |",
        f"| too short to group | {c.n_too_short} |",
        f"| new articles sharing their text with another (copies) | {c.n_copies} |",
        f"| new events | {c.n_events_new} |",
        f"| updated events | {c.n_events_updated} |",
        "",
    ]
    failures = dict(c.failures or {})
    if failures:
        out += ["## Failures by reason", "", "| reason | pages |", "|---|---:|"]
        out += [f"| {_cell(k)} | {v} |" for k, v in sorted(failures.items(), key=lambda kv: -kv[1])]
        out += ["", "## Failures by domain", "", "| domain | pages |", "|---|---:|"]
        out += [f"| {_cell(k)} | {v} |" for k, v in list(failures_by_domain.items())[:50]]
        if len(failures_by_domain) > 50:
            out.append(f"| … {len(failures_by_domain) - 50} more domains | |")
        out.append("")
    else:
        out += ["No failures.", ""]
    new = [r for r in rows if r.status == "new"]
    if new:
        out += ["## New events", ""]
        out += [
            f"- **{_cell(r.title)}** ({r.date or 'undated'}): {r.articles} article(s), "
            f"{r.sources} source(s)"
            for r in new[:20]
        ]
        if len(new) > 20:
            out.append(f"- … and {len(new) - 20} more (see the `{EVENTS_KEY}` table)")
        out.append("")
    if len(rows) > MAX_TABLE_ROWS:
        out += [f"The events table shows the first {MAX_TABLE_ROWS} of {len(rows)} events.", ""]
    if stage_seconds:
        out += ["## Time by stage", "", "| stage | seconds |", "|---|---:|"]
        out += [f"| {k} | {v:.2f} |" for k, v in stage_seconds.items()]
        out.append("")
    out.append(f"Warehouse: `{warehouse}`")
    return "\n".join(out)


def emit_new_events(
    rows: Sequence[EventRow], run_id: str, limit: int = MAX_EVENT_NOTICES
) -> int:
    """One `newsdedup.event.created` Prefect event per new event, for the first `limit` new
    rows (largest first: `event_rows` order), then one `newsdedup.events.created` event with
    the count of the others. Returns how many Prefect events were emitted."""
    new = [r for r in rows if r.status == "new"]
    for r in new[:limit]:
        emit_event(
            event=EVENT_CREATED,
            resource={
                "prefect.resource.id": f"{EVENT_RESOURCE_PREFIX}{r.event_id}",
                "prefect.resource.name": r.title[:200],
            },
            payload={
                "event_id": r.event_id, "title": r.title, "date": r.date,
                "articles": r.articles, "sources": r.sources, "run_id": run_id,
            },
        )
    if len(new) <= limit:
        return len(new)
    emit_event(
        event=EVENTS_CREATED,
        resource={
            "prefect.resource.id": f"{RUN_RESOURCE_PREFIX}{run_id}",
            "prefect.resource.name": f"newsdedup run {run_id}",
        },
        payload={
            "run_id": run_id, "new_events": len(new), "announced": limit,
            "not_announced": len(new) - limit,
        },
    )
    return limit + 1


def publish_run(
    run_id: str,
    counts: RunCounts,
    failures_by_domain: Mapping[str, int],
    rows: Sequence[EventRow],
    stage_seconds: Mapping[str, float],
    warehouse: str,
) -> None:
    """The run's markdown summary and events table, attached to the current flow run."""
    create_markdown_artifact(
        summary_markdown(run_id, counts, failures_by_domain, rows, stage_seconds, warehouse),
        key=SUMMARY_KEY,
        description=f"newsdedup run {run_id}: pages, failures, copies and events",
    )
    create_table_artifact(
        events_table(rows) or [{"status": "", "date": "", "articles": 0, "sources": 0,
                                "title": "(no new or updated events)", "event_id": ""}],
        key=EVENTS_KEY,
        description=f"newsdedup run {run_id}: {sum(r.status == 'new' for r in rows)} new and "
        f"{sum(r.status == 'updated' for r in rows)} updated events",
    )


class Progress:
    """The run's progress artifact: created at 0 %, moved as each stage ends."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        # Called from sync code, so the id itself (the stubs also allow a coroutine).
        self.artifact_id = cast(UUID, create_progress_artifact(
            0.0, key=PROGRESS_KEY, description=f"newsdedup run {run_id}: starting"
        ))

    def stage_done(self, stage: str, detail: str = "") -> None:
        update_progress_artifact(
            self.artifact_id,
            STAGE_PROGRESS[stage],
            description=f"newsdedup run {self.run_id}: {stage} done"
            + (f" ({detail})" if detail else ""),
        )
