"""The whole pipeline on the bundled sample, served on 127.0.0.1, through the real Prefect flow
(the session's `sample_run`, tests/conftest.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from flows.sampleserver import SAMPLE_DIR
from tests.opens import OPENS
from warehouse.queries import read_only

pytestmark = pytest.mark.slow


def test_a_run_opens_the_warehouse_once(sample_run) -> None:
    # Issue #20: a run opened the lake seven times (start, URL states, load pages, dedupe,
    # load events, finish, maintenance); now one session goes through every stage. Both runs:
    # the first creates the lake and maintains it, the second finds both done.
    assert OPENS == [Counter(writer=1), Counter(writer=1)]


def _by_file(warehouse: Path) -> dict[str, tuple[str, str]]:
    with read_only(warehouse) as con:
        rows = con.execute(
            "SELECT a.url, ea.event_id, ea.copy_id FROM articles a"
            " JOIN event_articles ea USING (article_id)"
        ).fetchall()
    return {url.rsplit("/", 1)[-1]: (event_id, copy_id) for url, event_id, copy_id in rows}


def test_every_sample_page_becomes_a_grouped_article(sample_run) -> None:
    _, warehouse, first, _ = sample_run
    expected = json.loads((SAMPLE_DIR / "expected.json").read_text())
    files = {f for members in expected["events"].values() for f in members}
    assert set(_by_file(warehouse)) == files
    assert first["articles"] == len(files)


def test_events_match_the_sample_truth(sample_run) -> None:
    _, warehouse, _, _ = sample_run
    expected = json.loads((SAMPLE_DIR / "expected.json").read_text())
    got = _by_file(warehouse)
    event_of = {key: {got[f][0] for f in files} for key, files in expected["events"].items()}
    for key, ids in event_of.items():
        assert len(ids) == 1, f"{key} split into {len(ids)} events"
    assert len({next(iter(ids)) for ids in event_of.values()}) == len(event_of)
    for key, files in expected["copies"].items():
        assert len({got[f][1] for f in files}) == 1, f"copy group {key} split"


def test_second_run_adds_no_rows(sample_run) -> None:
    _, _, first, second = sample_run
    for table in ("articles", "events", "event_articles", "event_aliases"):
        assert second[table] == first[table], table
    assert second["runs"] == first["runs"] + 1


def test_runs_ledger_records_both_runs(sample_run) -> None:
    _, warehouse, _, _ = sample_run
    with read_only(warehouse) as con:
        rows = con.execute(
            "SELECT status, n_articles_new, n_events_new FROM runs ORDER BY started_at"
        ).fetchall()
    assert [r[0] for r in rows] == ["completed", "completed"]
    assert rows[0][1] > 0 and rows[1][1] == 0 and rows[1][2] == 0


def test_copies_count_one_thing_in_the_summary_and_the_views(sample_run) -> None:
    # Issue #21: the run summary said 3 copies, latest_events.n_copies 4, source_stats.n_copies 7
    # on the demo. A copy is an article in a copy group of two or more, wherever it is counted
    # (README, "The warehouse"; docs/queries.md).
    _, warehouse, _, _ = sample_run
    with read_only(warehouse) as con:
        per_run = [n for (n,) in con.execute(
            "SELECT n_copies FROM runs ORDER BY started_at").fetchall()]
        by_event = con.execute("SELECT sum(n_copies), sum(n_texts) FROM latest_events").fetchone()
        by_site = con.execute("SELECT sum(n_copies) FROM source_stats").fetchone()
        groups = con.execute(
            "SELECT sum(n_articles) FILTER (WHERE n_articles > 1), count(*) FROM copies"
        ).fetchone()
    assert per_run == [3, 0]  # the wire story under three outlets; the second run adds nothing
    assert by_event is not None and by_site is not None and groups is not None
    assert by_event[0] == by_site[0] == groups[0] == 3
    assert by_event[1] == groups[1]  # an event's texts are its copy groups
