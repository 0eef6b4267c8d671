from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from dedupe.records import Assignment, DocState, Event, Grouping
from extract.records import Article, FetchedPage, Reason
from flows.cli import main
from warehouse.errors import ExportError
from warehouse.export import EXPORTS, export_parquet
from warehouse.queries import run_query
from warehouse.store import Warehouse

NOW = datetime(2025, 1, 8, 12, 0, tzinfo=UTC)


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    urls = ["http://a.example/1", "http://b.example/2"]
    with Warehouse.open(path) as wh:
        wh.start_run("r1", NOW, None)
        wh.load_pages(
            "r1",
            [FetchedPage(url=u, final_url=u, source="s", status=Reason.OK, fetched_at=NOW)
             for u in urls] + [FetchedPage(url="http://c.example/x", final_url="", source="s",
                                           status=Reason.TIMEOUT, fetched_at=NOW)],
            [Article(article_id=str(i), url=u, canonical_url=u, source="s", status=Reason.OK,
                     text="Blinken met Hayashi in Tokyo.", content_hash=f"h{i}", title=f"T{i}")
             for i, u in enumerate(urls)],
            NOW,
        )
        wh.load_grouping("r1", Grouping(
            assignments=(Assignment("0", "e1", "c1", "new_event", 1.0),
                         Assignment("1", "e1", "c1", "copy", 0.95, "0")),
            events=(Event("e1", "T0", "0", "earliest", ("0", "1"), 2, NOW, NOW),),
            aliases=(),
            states=(DocState("0", "e1", "c1", b"p0"), DocState("1", "e1", "c1", b"p1")),
        ), NOW)
    return path


def test_export_writes_every_table_and_view(warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "nested"
    files = export_parquet(warehouse, out)
    assert [f.name for f in files] == list(EXPORTS)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.parquet" for n in EXPORTS)
    rows = {f.name: f.rows for f in files}
    assert (rows["articles"], rows["events"], rows["event_articles"]) == (2, 1, 2)
    assert rows["copies"] == 1
    assert rows["failures_by_reason"] == 1
    con = duckdb.connect()
    got = con.execute("SELECT article_id, title FROM read_parquet(?) ORDER BY 1",
                      [str(out / "articles.parquet")]).fetchall()
    assert got == [("0", "T0"), ("1", "T1")]


def test_export_refuses_a_file_as_directory(warehouse: Path, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("keep me")
    with pytest.raises(ExportError, match="not a directory"):
        export_parquet(warehouse, not_a_dir)
    assert not_a_dir.read_text() == "keep me"


def test_export_refuses_names_outside_the_fixed_list(warehouse: Path, tmp_path: Path) -> None:
    for name in ("../escape", "events; DROP TABLE events", "duckdb_settings()"):
        with pytest.raises(ExportError, match="not exportable"):
            export_parquet(warehouse, tmp_path / "out", (name,))
    assert not (tmp_path / "escape.parquet").exists()
    assert run_query(warehouse, "SELECT count(*) FROM events").rows == [(1,)]


def test_export_never_writes_through_a_planted_symlink(warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    (out / "events.parquet").symlink_to(victim)
    export_parquet(warehouse, out, ("events",))
    assert victim.read_text() == "untouched"
    assert not (out / "events.parquet").is_symlink()
    assert not [p for p in out.iterdir() if p.name.startswith(".export-")]


def test_export_command(warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "dir with 'quotes\""
    code = main(["export", "--format", "parquet", str(out), "--warehouse", str(warehouse),
                 "--only", "events,latest_events"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["events.parquet", "latest_events.parquet"]
    assert "exported 2 files" in capsys.readouterr().out
    (tmp_path / "f").write_text("")
    assert main(["export", str(tmp_path / "f"), "--warehouse", str(warehouse)]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["export", str(out), "--warehouse", str(tmp_path / "none.duckdb")]) == 2
    assert "no warehouse" in capsys.readouterr().err


def test_query_command_refuses_writes_and_changes_nothing(
    warehouse: Path, capsys: pytest.CaptureFixture
) -> None:
    before = (warehouse / "catalog.sqlite").read_bytes()
    assert main(["query", "DROP TABLE events", "--warehouse", str(warehouse)]) == 2
    err = capsys.readouterr().err
    assert "read-only" in err and "nothing was changed" in err
    assert (warehouse / "catalog.sqlite").read_bytes() == before
    assert main(["query", "SELECT count(*) AS n FROM events", "--warehouse", str(warehouse),
                 "--format", "csv"]) == 0
    assert capsys.readouterr().out.split() == ["n", "1"]


def test_session_sql_opens_the_published_warehouse_in_a_users_own_session(
    warehouse: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["query", "--session-sql", "--warehouse", str(warehouse)]) == 0
    lines = capsys.readouterr().out.splitlines()
    con = duckdb.connect()
    for statement in lines:
        con.execute(statement)
    assert con.execute("SELECT count(*) FROM events").fetchone() == (1,)
    with pytest.raises(duckdb.Error):  # read-only
        con.execute("DELETE FROM events")
    # Time travel: the run's first published snapshot, by run id or by version.
    assert main(["query", "SELECT count(*) AS n FROM events", "--as-of-run", "r1",
                 "--warehouse", str(warehouse), "--format", "csv"]) == 0
    assert capsys.readouterr().out.split() == ["n", "1"]
    first = run_query(warehouse, "SELECT min(snapshot_id) FROM published").rows[0][0]
    assert run_query(warehouse, f"SELECT count(*) FROM runs AT (VERSION => {first})").rows
