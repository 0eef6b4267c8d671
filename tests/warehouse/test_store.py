from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from dedupe.records import Assignment, DocState, Event, Grouping
from extract.records import Article, FetchedPage, Reason
from warehouse.queries import NoWarehouse, QueryError, read_only, run_query
from warehouse.schema import CURRENT_VERSION, migrate
from warehouse.store import Warehouse, writer_path

NOW = datetime(2025, 1, 8, 12, 0, tzinfo=UTC)


def page(url: str, status: Reason = Reason.OK, etag: str | None = None) -> FetchedPage:
    return FetchedPage(url=url, final_url=url, source="s", status=status, fetched_at=NOW,
                       http_status=200 if status is Reason.OK else 404, etag=etag)


def article(aid: str, url: str, status: Reason = Reason.OK) -> Article:
    return Article(article_id=aid, url=url, canonical_url=url, source="s", status=status,
                   text="Blinken met Hayashi in Tokyo.", content_hash="h" + aid, title=f"T {aid}",
                   published_at=NOW, sitename="site")


def test_migrations_are_safe_to_rerun() -> None:
    con = duckdb.connect()
    assert migrate(con) == CURRENT_VERSION
    assert migrate(con) == CURRENT_VERSION
    assert con.execute("SELECT count(*) FROM schema_version").fetchone() == (CURRENT_VERSION,)


def test_load_pages_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    pages = [page("http://a/1", etag='"x"'), page("http://a/2"), page("http://a/3", Reason.HTTP_ERROR)]
    arts = [article("1", "http://a/1"), article("2", "http://a/2"), article("1", "http://a/1")]
    with Warehouse.open(path) as wh:
        wh.start_run("r1", NOW, None)
        assert wh.load_pages("r1", pages, arts, NOW) == {"1", "2"}
        assert wh.load_pages("r1", pages, arts, NOW) == set()
        assert wh.url_states()["http://a/1"].validators.etag == '"x"'
        assert [d.doc_id for d in wh.ungrouped_documents()] == ["1", "2"]
    with read_only(path) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (2,)
        assert con.execute("SELECT count(*) FROM fetches").fetchone() == (3,)


def test_load_grouping_merges_and_aliases(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Warehouse.open(path) as wh:
        wh.load_pages("r1", [page("http://a/1"), page("http://a/2")],
                      [article("1", "http://a/1"), article("2", "http://a/2")], NOW)
        first = Grouping(
            assignments=(Assignment("1", "e1", "c1", "new_event", 1.0),
                         Assignment("2", "e2", "c2", "new_event", 1.0)),
            events=(Event("e1", "T 1", "1", "earliest", ("1",), 1, NOW, NOW),
                    Event("e2", "T 2", "2", "earliest", ("2",), 1, NOW, NOW)),
            aliases=(),
            states=(DocState("1", "e1", "c1", b"p1"), DocState("2", "e2", "c2", b"p2")),
        )
        assert wh.load_grouping("r1", first, NOW) == (2, 0)
        wh.load_pages("r2", [page("http://a/3")], [article("3", "http://a/3")], NOW)
        merge = Grouping(
            assignments=(Assignment("3", "e1", "c3", "event_match", 0.7, "1"),),
            events=(Event("e1", "T 1", "1", "earliest", ("1", "2", "3"), 1, NOW, NOW),),
            aliases=(("e2", "e1"),),
            states=(DocState("3", "e1", "c3", b"p3"), DocState("2", "e1", "c2", b"p2")),
        )
        assert wh.load_grouping("r2", merge, NOW) == (0, 1)
        assert wh.ungrouped_documents() == []
    rows = run_query(path, "SELECT article_id, event_id FROM event_articles ORDER BY 1").rows
    assert rows == [("1", "e1"), ("2", "e1"), ("3", "e1")]
    assert run_query(path, "SELECT event_id, n_articles FROM events").rows == [("e1", 3)]
    assert run_query(path, "SELECT alias_id, event_id FROM event_aliases").rows == [("e2", "e1")]


def test_queries_are_read_only(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Warehouse.open(path):
        pass
    with pytest.raises(QueryError, match="read-only"):
        run_query(path, "DROP TABLE events")
    assert run_query(path, "SELECT count(*) FROM events").rows == [(0,)]


def test_readers_use_the_published_snapshot_while_the_writer_is_open(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Warehouse.open(path):
        pass
    with Warehouse.open(path) as wh:
        wh.load_pages("r1", [page("http://a/1")], [article("1", "http://a/1")], NOW)
        assert writer_path(path).exists()
        assert run_query(path, "SELECT count(*) FROM articles").rows == [(0,)]
    assert run_query(path, "SELECT count(*) FROM articles").rows == [(1,)]


def test_missing_warehouse_is_named(tmp_path: Path) -> None:
    with pytest.raises(NoWarehouse, match="newsdedup run"):
        run_query(tmp_path / "nope.duckdb", "SELECT 1")
