"""Warehouse.dedupe_states(since): a run reads the grouping state of the open events only (an
event with a member at or after `since`), every member of them, and nothing of closed ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from dedupe.records import Assignment, DocState, Event, Grouping
from extract.records import Article, FetchedPage, Reason
from warehouse.store import Warehouse

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _article(aid: str, day: int | None) -> Article:
    url = f"http://a/{aid}"
    return Article(article_id=aid, url=url, canonical_url=url, source="s", status=Reason.OK,
                   text=f"text {aid}", content_hash=f"h{aid}", title=aid,
                   published_at=None if day is None else T0 + timedelta(days=day))


def _load(wh: Warehouse, run_id: str, members: dict[str, tuple[str, int | None]],
          people: dict[str, tuple[str, ...]] | None = None) -> None:
    """Load articles {doc_id: (event_id, day)} and their grouping state in one run; `people`:
    the people some of them name with an age."""
    people = people or {}
    arts = [_article(aid, day) for aid, (_, day) in members.items()]
    pages = [FetchedPage(url=a.url, final_url=a.url, source="s", status=Reason.OK,
                         fetched_at=T0 + timedelta(days=60), http_status=200) for a in arts]
    wh.load_pages(run_id, pages, arts, T0 + timedelta(days=60))
    by_event: dict[str, list[str]] = {}
    for aid, (eid, _) in members.items():
        by_event.setdefault(eid, []).append(aid)
    wh.load_grouping(run_id, Grouping(
        assignments=tuple(Assignment(a, e, f"c{a}", "new_event", 1.0)
                          for a, (e, _) in members.items()),
        events=tuple(Event(e, e, ids[0], "earliest", tuple(ids), 1)
                     for e, ids in by_event.items()),
        aliases=(),
        states=tuple(DocState(a, e, f"c{a}", f"p{a}".encode(), people.get(a, ()))
                     for a, (e, _) in members.items()),
    ), T0 + timedelta(days=60))


def test_only_open_events_are_read_and_wholly(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.lake") as wh:
        _load(wh, "r1", {
            "old1": ("closed", 0), "old2": ("closed", 3),       # closed: latest member day 3
            "a1": ("open", 1), "a2": ("open", 40),              # open through its day-40 member
            "b1": ("recent", 45),
        })
        since = T0 + timedelta(days=30)
        assert sorted(s.doc_id for s in wh.dedupe_states(since)) == ["a1", "a2", "b1"]
        assert sorted(s.doc_id for s in wh.dedupe_states()) == ["a1", "a2", "b1", "old1", "old2"]
        # A late report merged into the closed event (a run that chose to reopen it) reopens
        # the whole event.
        _load(wh, "r2", {"late": ("closed", 50)})
        states = {s.doc_id: s for s in wh.dedupe_states(since)}
        assert sorted(states) == ["a1", "a2", "b1", "late", "old1", "old2"]
        assert states["old1"].payload == b"pold1"


def test_an_undated_article_is_open_from_when_it_was_first_seen(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.lake") as wh:
        _load(wh, "r1", {"u": ("undated", None)})  # first seen on day 60
        assert [s.doc_id for s in wh.dedupe_states(T0 + timedelta(days=59))] == ["u"]
        assert wh.dedupe_states(T0 + timedelta(days=61)) == []


def test_a_closed_event_naming_a_new_report_s_person_is_read_wholly(tmp_path: Path) -> None:
    # A follow-up weeks later names the victim with the age: the quiet event it follows up is
    # read; one naming another person, or the same one more than PERSON_DAYS before, is not.
    with Warehouse.open(tmp_path / "w.lake") as wh:
        _load(wh, "r1", {
            "shot": ("shooting", 0), "vigil": ("shooting", 2),
            "other": ("elsewhere", 1), "older": ("years ago", -1200),
        }, people={"shot": ("brandon stallings|18",), "other": ("andre jones|24",),
                   "older": ("brandon stallings|18",)})
        since = T0 + timedelta(days=30)
        assert wh.dedupe_states(since) == []
        states = wh.dedupe_states(since, frozenset({"brandon stallings|18", "carl smith|19"}))
        assert sorted(s.doc_id for s in states) == ["shot", "vigil"]
        assert {s.doc_id: s.people for s in states}["shot"] == ("brandon stallings|18",)
