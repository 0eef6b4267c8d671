"""articles.date_source (migration 3): stored from the Article, shown in event_timeline and
event_members, and turned into Document.date_guessed for grouping."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from dedupe.records import Assignment, DocState, Event, Grouping
from extract.records import Article, DateSource, FetchedPage, Reason
from warehouse.queries import run_query
from warehouse.schema import CURRENT_VERSION, MIGRATIONS, migrate
from warehouse.store import Warehouse

NOW = datetime(2025, 1, 8, 12, 0, tzinfo=UTC)


def page(url: str) -> FetchedPage:
    return FetchedPage(url=url, final_url=url, source="s", status=Reason.OK, fetched_at=NOW)


def article(aid: str, source: DateSource | None) -> Article:
    return Article(article_id=aid, url=f"http://a/{aid}", canonical_url=f"http://a/{aid}",
                   source="s", status=Reason.OK, text="Blinken met Hayashi in Tokyo.",
                   content_hash="h" + aid, published_at=NOW if source else None,
                   date_source=source)


def test_migration_3_adds_date_source_to_a_v2_warehouse() -> None:
    con = duckdb.connect()
    assert migrate(con, MIGRATIONS[:2]) == 2
    con.execute(
        "INSERT INTO articles (article_id, url, canonical_url, content_hash, status,"
        " published_at, first_seen_at, first_run_id) VALUES"
        " ('1', 'http://a/1', 'http://a/1', 'h', 'ok', now(), now(), 'r')"
    )
    assert migrate(con) == CURRENT_VERSION
    # Loaded before: its source is unknown, not guessed.
    assert con.execute("SELECT date_source FROM articles").fetchall() == [(None,)]
    for view in ("event_timeline", "event_members"):
        columns = [r[0] for r in con.execute(f"DESCRIBE {view}").fetchall()]
        assert columns.index("date_source") == columns.index("published_at") + 1
    assert migrate(con) == CURRENT_VERSION


def test_date_source_is_loaded_shown_and_read_back_as_date_guessed(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    sources = {"m": DateSource.META, "t": DateSource.TEXT, "f": DateSource.FEED, "n": None}
    articles = [article(aid, source) for aid, source in sources.items()]
    with Warehouse.open(path) as wh:
        wh.load_pages("r1", [page(a.url) for a in articles], articles, NOW)
        docs = {d.doc_id: d for d in wh.ungrouped_documents()}
        assert {aid: d.date_guessed for aid, d in docs.items()} == {
            "m": False, "t": True, "f": False, "n": False}
        assert docs["t"].published_at == NOW
        wh.load_grouping("r1", Grouping(
            assignments=(Assignment("t", "e1", "c1", "new_event", 0.0),),
            events=(Event("e1", "T", "t", "earliest", ("t",), 1, NOW, NOW),),
            aliases=(), states=(DocState("t", "e1", "c1", b"p"),)), NOW)
    assert run_query(path, "SELECT article_id, date_source FROM articles ORDER BY 1").rows == [
        ("f", "feed"), ("m", "meta"), ("n", None), ("t", "text")]
    assert run_query(path, "SELECT date_source FROM event_members").rows == [("text",)]
    # An article is immutable once stored: loading it again with another source changes nothing.
    with Warehouse.open(path) as wh:
        wh.load_pages("r2", [page("http://a/m")], [replace(articles[0], date_source=None)], NOW)
    assert run_query(path, "SELECT date_source FROM articles WHERE article_id = 'm'").rows == [
        ("meta",)]


def test_a_guessed_date_does_not_close_its_event(tmp_path: Path) -> None:
    # An undated page whose text mentions 1995 gets the guess 1995-01-01; the event it founded
    # must stay open for the next run's write-ups, by when the page was first seen.
    path = tmp_path / "w.duckdb"
    old = datetime(1995, 1, 1, tzinfo=UTC)
    guessed = replace(article("t", DateSource.TEXT), published_at=old)
    stated = replace(article("m", DateSource.META), published_at=old)
    with Warehouse.open(path) as wh:
        wh.load_pages("r1", [page(a.url) for a in (guessed, stated)], [guessed, stated], NOW)
        wh.load_grouping("r1", Grouping(
            assignments=(Assignment("t", "e1", "c1", "new_event", 0.0),
                         Assignment("m", "e2", "c2", "new_event", 0.0)),
            events=(Event("e1", "T", "t", "earliest", ("t",), 1, NOW, NOW),
                    Event("e2", "M", "m", "earliest", ("m",), 1, old, old)),
            aliases=(), states=(DocState("t", "e1", "c1", b"p"), DocState("m", "e2", "c2", b"p"))),
            NOW)
        since = NOW - timedelta(days=30)
        assert [s.doc_id for s in wh.dedupe_states(since)] == ["t"]


def test_migration_6_reopens_events_a_guessed_date_closed() -> None:
    con = duckdb.connect()
    assert migrate(con, MIGRATIONS[:4]) == 4
    con.execute(
        "INSERT INTO articles (article_id, url, canonical_url, content_hash, status,"
        " published_at, first_seen_at, first_run_id, date_source) VALUES"
        " ('t', 'http://a/t', 'http://a/t', 'h', 'ok', '1995-01-01', '2025-01-08', 'r', 'text'),"
        " ('m', 'http://a/m', 'http://a/m', 'i', 'ok', '1995-01-01', '2025-01-08', 'r', 'meta')"
    )
    con.execute("INSERT INTO dedupe_state (doc_id, payload, updated_at, event_at) VALUES"
                " ('t', '', now(), '1995-01-01'), ('m', '', now(), '1995-01-01')")
    assert migrate(con) == CURRENT_VERSION
    assert con.execute("SELECT doc_id, event_at::DATE::VARCHAR FROM dedupe_state ORDER BY 1"
                       ).fetchall() == [("m", "1995-01-01"), ("t", "2025-01-08")]
