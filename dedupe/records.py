"""The records that cross dedupe/'s boundary: Document in; Assignment, Event, DocState out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Document:
    """What grouping needs of an article. `source` is the outlet (site or host), for n_sources.
    `date_guessed`: `published_at` was guessed from the body text, not stated by the publisher
    (metadata, URL or feed): weak evidence, which never splits an event alone."""

    doc_id: str
    text: str
    title: str = ""
    url: str = ""
    source: str = ""
    published_at: datetime | None = None
    date_guessed: bool = False


@dataclass(frozen=True)
class Assignment:
    """Where one document landed and why. `event_id`/`copy_id` are None for documents that are
    never grouped (empty or too short). `rule` names the step that placed it (for example
    "new_event", "copy", "event_match", "too_short"); `similarity` is the score that rule used
    and `matched_doc_id` the member it matched, if any."""

    doc_id: str
    event_id: str | None
    copy_id: str | None
    rule: str
    similarity: float
    matched_doc_id: str | None = None


@dataclass(frozen=True)
class Event:
    """One real-world happening with its members' derived facts."""

    event_id: str
    title: str
    canonical_doc_id: str
    canonical_rule: str
    member_ids: tuple[str, ...]
    n_sources: int
    first_published_at: datetime | None = None
    last_published_at: datetime | None = None
    event_date: str | None = None  # ISO date the members agree on, if any
    place: str | None = None


@dataclass(frozen=True)
class DocState:
    """What grouping keeps of a document between runs. The warehouse stores it as given:
    `doc_id`, `event_id`, `copy_id` as columns and `payload` as an opaque blob that only dedupe/
    reads (signatures with their seed and permutation count, the event fingerprint, ...)."""

    doc_id: str
    event_id: str | None
    copy_id: str | None
    payload: bytes
    # The people the document names with an age (dedupe.people), also inside the payload: a
    # column, so that a run can find the closed events its new reports may follow up.
    people: tuple[str, ...] = ()


@dataclass(frozen=True)
class Grouping:
    """The result of one grouping call: an assignment per new document, every event touched
    (new or updated), aliases from merged event ids to the surviving id, and the state to keep."""

    assignments: tuple[Assignment, ...]
    events: tuple[Event, ...]
    aliases: tuple[tuple[str, str], ...]
    states: tuple[DocState, ...]
