"""The open window of a scheduled run: which earlier groups a run's new documents may still
join. The flow reads the open groups' states from the warehouse
(warehouse.store.Warehouse.dedupe_states); `newsdedup eval clustering --open-days` applies the
same rule in memory (open_states). No grouping code here: the flow imports this module at
start, and dedupe.grouping only when a run has documents to group."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from dedupe.people import PERSON_DAYS
from dedupe.people import people as people_in
from dedupe.records import DocState, Document
from dedupe.text import titled


def open_states(
    states: Iterable[DocState],
    dates: dict[str, datetime | None],
    since: datetime,
    people: frozenset[str] = frozenset(),
) -> list[DocState]:
    """The states of the groups still open at `since`, by the rule the flow's warehouse
    applies (warehouse.store.Warehouse.dedupe_states): every member of an event (else of a
    copy group, else the document alone) with a member dated at or after `since`, or with a
    member that names one of `people` (the new documents' people_named) and is dated at most
    PERSON_DAYS before `since`: the event a follow-up may belong to, however long it was quiet.
    An undated document counts as open (the warehouse dates it by when it was first seen)."""
    states = list(states)
    person_since = since - timedelta(days=PERSON_DAYS)

    def key(s: DocState) -> str:
        return s.event_id or s.copy_id or s.doc_id

    def is_open(s: DocState) -> bool:
        when = dates.get(s.doc_id)
        if when is None or when >= since:
            return True
        return when >= person_since and not people.isdisjoint(s.people)

    open_keys = {key(s) for s in states if is_open(s)}
    return [s for s in states if key(s) in open_keys]


def people_named(docs: Iterable[Document]) -> frozenset[str]:
    """The people the documents name with an age, read as grouping reads them."""
    found: set[str] = set()
    for d in docs:
        found |= people_in(titled(d.text, d.title))
    return frozenset(found)


def window_start(docs: Sequence[Document], open_days: float, now: datetime) -> datetime:
    """Where a run's open window starts: the earliest new document's date less open_days.
    From the documents' dates, not the clock (a replayed stream's dates are years old); an
    undated document counts as published `now`. Two kinds of date never widen the window, or
    one stray date would make a run read years of history: a date guessed from the text
    (`date_guessed`), and one more than open_days before the run's median date (a late report:
    it is grouped against the open events like the rest)."""
    dates = sorted(
        now if d.published_at is None or d.date_guessed else as_utc(d.published_at) or now
        for d in docs
    )
    if not dates:
        return now - timedelta(days=open_days)
    median = dates[len(dates) // 2]
    earliest = next(d for d in dates if d >= median - timedelta(days=open_days))
    return earliest - timedelta(days=open_days)


def as_utc(when: datetime | None) -> datetime | None:
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC)
