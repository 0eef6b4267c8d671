"""articles.date_source (migration 3): stored from the Article, shown in event_timeline and
event_members, and turned into Document.date_guessed for grouping."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
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
