"""dedupe.window.open_states: the offline twin of Warehouse.dedupe_states(since)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dedupe.records import DocState
from dedupe.window import open_states

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_open_groups_are_kept_whole_and_closed_ones_dropped() -> None:
    states = [DocState("old", "closed", "c1", b""), DocState("a1", "open", "c2", b""),
              DocState("a2", "open", "c3", b""), DocState("u", None, None, b"")]
    dates = {"old": T0, "a1": T0, "a2": T0 + timedelta(days=40), "u": None}
    kept = open_states(states, dates, T0 + timedelta(days=30))
    assert [s.doc_id for s in kept] == ["a1", "a2", "u"]


def test_a_closed_event_naming_a_new_document_s_person_stays_open() -> None:
    from dedupe.window import people_named

    states = [DocState("shot", "shooting", "c1", b"", ("brandon stallings|18",)),
              DocState("vigil", "shooting", "c2", b""),
              DocState("older", "years ago", "c3", b"", ("brandon stallings|18",))]
    dates = {"shot": T0, "vigil": T0, "older": T0 - timedelta(days=1200)}
    arrest = "Police arrested a man in the shooting of Brandon Lee Stallings, 18, in July."
    from dedupe.records import Document

    named = people_named([Document("arrest", arrest, title="Arrest made")])
    assert named == {"brandon stallings|18"}
    since = T0 + timedelta(days=30)
    assert open_states(states, dates, since) == []
    assert [s.doc_id for s in open_states(states, dates, since, named)] == ["shot", "vigil"]


def test_an_event_of_guessed_dates_stays_open_for_later_runs() -> None:
    # Undated pages whose texts mention other years get guessed dates years apart; as in the
    # warehouse (a guessed date is no event time), their story stays open run after run.
    from dedupe.runs import group_in_runs
    from tests.dedupe.stories import blended_doc

    runs = [[blended_doc(f"d{k}", 1, k, 0, day, guessed=True)]
            for k, day in enumerate((-3000, 0))]
    placed = group_in_runs(runs, open_days=30)
    assert len({a.event_id for a in placed.values()}) == 1
