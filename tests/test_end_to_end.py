"""The whole pipeline on the bundled sample, served on 127.0.0.1, through the real Prefect flow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.cli import main
from flows.commands.demo import demo_config
from flows.sampleserver import SAMPLE_DIR, serve_directory
from warehouse.queries import read_only, table_counts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample_run(
    prefect_harness: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path, dict[str, int], dict[str, int]]]:
    tmp = tmp_path_factory.mktemp("e2e")
    warehouse = tmp / "newsdedup.duckdb"
    with serve_directory(SAMPLE_DIR) as base_url:
        config = tmp / "newsdedup.toml"
        config.write_text(demo_config(base_url, warehouse))
        assert main(["run", "--config", str(config)]) == 0
        with read_only(warehouse) as con:
            first = table_counts(con)
        assert main(["run", "--config", str(config)]) == 0
        with read_only(warehouse) as con:
            second = table_counts(con)
    yield config, warehouse, first, second


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
