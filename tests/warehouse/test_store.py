from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from dedupe.records import Assignment, DocState, Event, Grouping
from extract.records import Article, FetchedPage, Reason
from warehouse import lake
from warehouse.errors import WarehouseBusy, WarehouseCorrupt, WarehouseError
from warehouse.queries import NoWarehouse, QueryError, read_only, run_query
from warehouse.schema import CURRENT_VERSION, MIGRATIONS, migrate
from warehouse.store import RunCounts, Warehouse, hold_run_lock

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
    pages = [
        page("http://a/1", etag='"x"'), page("http://a/2"), page("http://a/3", Reason.HTTP_ERROR)
    ]
    arts = [article("1", "http://a/1"), article("2", "http://a/2"), article("1", "http://a/1")]
    with Warehouse.open(path) as wh:
        wh.start_run("r1", NOW, None)
        assert wh.load_pages("r1", pages, arts, NOW) == {"1", "2"}
        assert wh.load_pages("r1", pages, arts, NOW) == set()
        assert wh.url_states(["http://a/1"])["http://a/1"].validators.etag == '"x"'
        assert set(wh.url_states(["http://a/2", "http://a/9"])) == {"http://a/2"}
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
        assert lake.is_lake(path)
        assert run_query(path, "SELECT count(*) FROM articles").rows == [(0,)]
    assert run_query(path, "SELECT count(*) FROM articles").rows == [(1,)]


def test_missing_warehouse_is_named(tmp_path: Path) -> None:
    with pytest.raises(NoWarehouse, match="newsdedup run"):
        run_query(tmp_path / "nope.duckdb", "SELECT 1")


def grouping(*members: tuple[str, str, str], aliases: tuple[tuple[str, str], ...] = ()) -> Grouping:
    """members: (doc_id, event_id, copy_id); one event per distinct event_id."""
    by_event: dict[str, list[str]] = {}
    for doc, ev, _ in members:
        by_event.setdefault(ev, []).append(doc)
    return Grouping(
        assignments=tuple(Assignment(d, e, c, "new_event", 0.8) for d, e, c in members),
        events=tuple(Event(e, f"T {ds[0]}", ds[0], "earliest", tuple(ds), len(ds), NOW, NOW)
                     for e, ds in by_event.items()),
        aliases=aliases,
        states=tuple(DocState(d, e, c, b"p") for d, e, c in members),
    )


def test_migration_2_upgrades_a_v1_warehouse_and_backfills_sites() -> None:
    con = duckdb.connect()
    assert migrate(con, MIGRATIONS[:1]) == 1
    con.execute(
        "INSERT INTO articles (article_id, url, canonical_url, content_hash, status,"
        " first_seen_at, first_run_id) VALUES"
        " ('1', 'https://WWW.Example.org:8080/a?b=1', 'x', 'h', 'ok', now(), 'r')"
    )
    con.execute(
        "INSERT INTO fetches (run_id, url, status) VALUES ('r', 'http://u@kyodo.jp/x', 'timeout')"
    )
    assert migrate(con) == CURRENT_VERSION
    assert con.execute("SELECT site FROM articles").fetchall() == [("example.org",)]
    assert con.execute("SELECT reason, domain FROM failures_by_reason").fetchall() == [
        ("timeout", "kyodo.jp")
    ]
    assert migrate(con) == CURRENT_VERSION


def test_every_load_path_deduplicates_its_batch(tmp_path: Path) -> None:
    """DuckDB's INSERT ... ON CONFLICT keeps one row silently when a key repeats inside one
    statement; every batch is therefore deduplicated before it is written."""
    path = tmp_path / "w.duckdb"
    pages = [page("http://a/1", Reason.TIMEOUT), page("http://a/1"), page("http://a/2")]
    arts = [article("1", "http://a/1"), article("1", "http://a/1"), article("2", "http://a/2")]
    twice = Grouping(
        assignments=grouping(("1", "e1", "c1"), ("2", "e1", "c1")).assignments * 2,
        events=grouping(("1", "e1", "c1"), ("2", "e1", "c1")).events * 2,
        aliases=(("e9", "e1"), ("e9", "e1")),
        states=grouping(("1", "e1", "c1"), ("2", "e1", "c1")).states * 2,
    )
    with Warehouse.open(path) as wh:
        wh.start_run("r1", NOW, None)
        wh.start_run("r1", NOW, None)
        assert wh.load_pages("r1", pages, arts, NOW) == {"1", "2"}
        assert wh.load_grouping("r1", twice, NOW) == (1, 0)
        assert wh.load_grouping("r1", twice, NOW) == (0, 1)
    counts = run_query(path, """
        SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM fetches),
               (SELECT count(*) FROM url_state), (SELECT count(*) FROM articles),
               (SELECT count(*) FROM event_articles), (SELECT count(*) FROM dedupe_state),
               (SELECT count(*) FROM events), (SELECT count(*) FROM event_aliases)
    """).rows
    assert counts == [(1, 2, 2, 2, 2, 2, 1, 1)]
    # the last outcome of a URL in a batch wins
    assert run_query(path, "SELECT status FROM fetches WHERE url = 'http://a/1'").rows == [("ok",)]


def test_extraction_failures_have_a_row_and_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    pages = [page(u, etag='"v"') for u in ("http://a.example/1", "http://b.example/2",
                                            "http://b.example/3")]
    arts = [
        article("1", "http://a.example/1"),
        article("2", "http://b.example/2", Reason.EXTRACTION_FAILED),
        article("3", "http://b.example/3", Reason.TOO_SHORT),
    ]
    with Warehouse.open(path) as wh:
        wh.start_run("r1", NOW, None)
        assert wh.load_pages("r1", pages, arts, NOW) == {"1", "3"}
    with Warehouse.open(path, publish=False) as wh:
        states = wh.url_states([p.url for p in pages])
    assert states["http://b.example/2"].validators.etag is None  # fetched whole next time
    assert states["http://b.example/3"].validators.etag == '"v"'
    rows = run_query(path, "SELECT stage, reason, domain, n_failures FROM failures_by_reason").rows
    assert rows == [("extract", "extraction_failed", "b.example", 1)]
    stats = run_query(
        path, "SELECT site, n_articles, n_too_short, n_failures FROM source_stats ORDER BY site"
    ).rows
    assert stats == [("a.example", 1, 0, 0), ("b.example", 1, 1, 1)]
    ledger = run_query(path, "SELECT stage, n_rows FROM run_stages").rows
    assert ledger == [("load_pages", '{"articles_new": 2, "fetches": 3, "url_state": 3}')]


def test_views_answer_the_common_questions(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    urls = [f"http://s{i}.example/{i}" for i in range(4)]
    with Warehouse.open(path) as wh:
        wh.start_run("r1", NOW, None)
        wh.load_pages("r1", [page(u) for u in urls],
                      [article(str(i), u) for i, u in enumerate(urls)], NOW)
        wh.load_grouping("r1", grouping(("0", "e1", "c1"), ("1", "e1", "c1"), ("2", "e1", "c2"),
                                        ("3", "e2", "c3")), NOW)
        wh.load_grouping("r1", grouping(("0", "e1", "c1"), ("1", "e1", "c1"), ("2", "e1", "c2"),
                                        ("3", "e1", "c3"), aliases=(("e2", "e1"),)), NOW)
    latest = run_query(
        path, "SELECT event_id, n_copies, n_texts, canonical_url FROM latest_events").rows
    # Copies are articles in a copy group of two or more (0 and 1); texts are copy groups.
    assert latest == [("e1", 2, 3, "http://s0.example/0")]
    by_site = run_query(path, "SELECT site, n_copies FROM source_stats ORDER BY site").rows
    assert by_site == [("s0.example", 1), ("s1.example", 1), ("s2.example", 0), ("s3.example", 0)]
    copies = run_query(
        path, "SELECT copy_id, event_id, n_articles, first_article_id FROM copies ORDER BY 1"
    ).rows
    assert copies == [("c1", "e1", 2, "0"), ("c2", "e1", 1, "2"), ("c3", "e1", 1, "3")]
    timeline = run_query(
        path, "SELECT position, article_id, site, is_canonical FROM event_timeline"
        " WHERE event_id = 'e1' ORDER BY position"
    ).rows
    assert [r[1] for r in timeline] == ["0", "1", "2", "3"]
    assert timeline[0] == (1, "0", "s0.example", True)
    by_alias = run_query(
        path, "SELECT event_id, count(*) FROM event_members WHERE any_event_id = ? GROUP BY 1",
        ["e2"],
    ).rows
    assert by_alias == [("e1", 4)]


def test_alias_chains_resolve_to_the_final_survivor(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Warehouse.open(path) as wh:
        wh.load_pages("r1", [page("http://a/1"), page("http://a/2"), page("http://a/3")],
                      [article("1", "http://a/1"), article("2", "http://a/2"),
                       article("3", "http://a/3")], NOW)
        wh.load_grouping("r1", grouping(("1", "e1", "c1"), ("2", "e2", "c2"),
                                        ("3", "e3", "c3")), NOW)
        # e3 merges into e2, later e2 into e1; article 3's state is not restated the second time
        wh.load_grouping("r2", grouping(("2", "e2", "c2"), ("3", "e2", "c3"),
                                        aliases=(("e3", "e2"),)), NOW)
        wh.load_grouping("r3", grouping(("1", "e1", "c1"), ("2", "e1", "c2"),
                                        aliases=(("e2", "e1"),)), NOW)
    assert run_query(path, "SELECT alias_id, event_id FROM event_aliases ORDER BY 1").rows == [
        ("e2", "e1"), ("e3", "e1")
    ]
    assert run_query(path, "SELECT DISTINCT event_id FROM event_articles").rows == [("e1",)]
    assert run_query(path, "SELECT event_id FROM events").rows == [("e1",)]


def test_article_values_are_bound_never_pasted(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    evil = "x'); DROP TABLE events; --"
    a = Article(article_id=evil, url="http://a/'1", canonical_url="http://a/'1", source=evil,
                status=Reason.OK, text=evil, content_hash=evil, title=evil, sitename=evil)
    with Warehouse.open(path) as wh:
        wh.start_run(evil, NOW, evil)
        wh.load_pages(evil, [page("http://a/'1")], [a], NOW)
    assert run_query(path, "SELECT title, text FROM articles").rows == [(evil, evil)]
    assert run_query(path, "SELECT count(*) FROM events").rows == [(0,)]


def test_publish_records_a_snapshot_and_skips_an_unchanged_writer(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Warehouse.open(path) as wh:
        wh.start_run("r1", NOW, None)
    published = run_query(path, "SELECT snapshot_id, run_id FROM published").rows
    assert [r[1] for r in published] == ["r1"]
    with Warehouse.open(path):  # nothing written: nothing to publish
        pass
    assert run_query(path, "SELECT snapshot_id, run_id FROM published").rows == published
    with Warehouse.open(path) as wh:
        assert wh.publish() is False
        wh.finish_run("r1", NOW, RunCounts(n_fetched=1))
        assert wh.publish() is True
    assert run_query(path, "SELECT n_fetched FROM runs").rows == [(1,)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.duckdb", "w.duckdb.lock"]
    assert sorted(p.name for p in path.iterdir()) == ["catalog.sqlite", "data"]


def test_an_earlier_run_reads_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Warehouse.open(path) as wh:
        wh.start_run("r1", NOW, None)
        wh.load_pages("r1", [page("http://a/1")], [article("1", "http://a/1")], NOW)
    with Warehouse.open(path) as wh:
        wh.start_run("r2", NOW, None)
        wh.load_pages("r2", [page("http://a/2")], [article("2", "http://a/2")], NOW)
    assert run_query(path, "SELECT count(*) FROM articles").rows == [(2,)]
    assert run_query(path, "SELECT count(*) FROM articles", as_of_run="r1").rows == [(1,)]
    with pytest.raises(NoWarehouse, match="published nothing"):
        run_query(path, "SELECT 1", as_of_run="r9")


def test_a_second_writer_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Warehouse.open(path, publish=False):
        with pytest.raises(WarehouseBusy, match="already loading"):
            with Warehouse.open(path, wait_s=0.1):
                pass
    with hold_run_lock(path):
        with pytest.raises(WarehouseBusy):
            with hold_run_lock(path):
                pass


def test_a_file_where_the_lake_should_be_is_named(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    path.write_bytes(b"this is not a database" * 300)
    with pytest.raises(NoWarehouse, match="not a newsdedup warehouse"):
        run_query(path, "SELECT 1")
    with pytest.raises(WarehouseCorrupt, match="DuckLake directory"):
        with Warehouse.open(path):
            pass


def test_a_damaged_catalog_is_named(tmp_path: Path) -> None:
    path = tmp_path / "w"
    path.mkdir()
    lake.catalog_path(path).write_bytes(b"neither is this" * 300)
    with pytest.raises(WarehouseError, match="could not open"):
        run_query(path, "SELECT 1")
    with pytest.raises(WarehouseError, match="could not open"):
        with Warehouse.open(path):
            pass


def test_driver_errors_in_a_load_leave_as_warehouse_error(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        with pytest.raises(WarehouseError, match="rolled back"):
            with wh.atomic() as con:
                con.execute(
                    "INSERT INTO runs (run_id, started_at, status) VALUES ('r', now(), 'x')"
                )
                # NULL in a NOT NULL column: a constraint error
                con.execute(
                    "INSERT INTO runs (run_id, started_at, status) VALUES ('s', now(), NULL)"
                )
        assert wh.con.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_interrupted_runs_are_marked(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        wh.start_run("killed", NOW, None)
        wh.start_run("now", NOW, None)
        assert wh.mark_interrupted_runs("now") == 1
        assert wh.con.execute("SELECT run_id, status FROM runs ORDER BY 1").fetchall() == [
            ("killed", "interrupted"), ("now", "running")
        ]


def test_queries_cannot_touch_files(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Warehouse.open(path):
        pass
    out = tmp_path / "leak.csv"
    with pytest.raises(QueryError, match="nothing was changed"):
        run_query(path, f"COPY (SELECT 1) TO '{out}'")
    with pytest.raises(QueryError, match="nothing was changed"):
        run_query(path, f"COPY (SELECT 1) TO '{path / 'data' / 'x.parquet'}'")
    with pytest.raises(QueryError):
        run_query(path, "SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(QueryError):
        run_query(path, "SET enable_external_access = true")
    assert not out.exists()


def test_an_event_formed_again_after_a_merge_is_no_alias(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Warehouse.open(path) as wh:
        wh.load_pages("r1", [page("http://a/1"), page("http://a/2"), page("http://a/3")],
                      [article("1", "http://a/1"), article("2", "http://a/2"),
                       article("3", "http://a/3")], NOW)
        wh.load_grouping("r1", grouping(("1", "e1", "c1"), ("2", "e2", "c2")), NOW)
        wh.load_grouping("r2", grouping(("1", "e1", "c1"), ("2", "e1", "c2"),
                                        aliases=(("e2", "e1"),)), NOW)
        # later, dedupe forms e2 again for a new article, and another merge happens elsewhere
        wh.load_grouping("r3", grouping(("3", "e2", "c3")), NOW)
        wh.load_grouping("r4", grouping(("9", "e1", "c9"), aliases=(("e9", "e1"),)), NOW)
    assert run_query(path, "SELECT alias_id FROM event_aliases").rows == [("e9",)]
    assert run_query(path, "SELECT event_id FROM event_articles WHERE article_id = '3'").rows == [
        ("e2",)
    ]
