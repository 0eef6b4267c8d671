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
