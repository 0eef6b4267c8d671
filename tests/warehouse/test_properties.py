"""Loads are idempotent and, for the rows they keep, independent of the order of a batch."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from dedupe.records import Assignment, DocState, Event, Grouping
from extract.records import Article, FetchedPage, Reason
from warehouse.schema import migrate
from warehouse.store import Warehouse

NOW = datetime(2025, 1, 8, 12, 0, tzinfo=UTC)
STATUSES = (Reason.OK, Reason.OK, Reason.TIMEOUT, Reason.NOT_MODIFIED)
TABLES = ("fetches", "url_state", "articles", "event_articles", "dedupe_state", "events",
          "event_aliases", "run_stages")


_POOL: list[Warehouse] = []


def memory_warehouses(n: int) -> list[Warehouse]:
    """n empty in-memory warehouses. Migrating a fresh database per example costs more than the
    example, so a small pool is migrated once and emptied between examples."""
    while len(_POOL) < n:
        con = duckdb.connect()
        migrate(con)
        _POOL.append(Warehouse(Path("unused.duckdb"), con))  # loads never touch the file
    for wh in _POOL[:n]:
        for table in TABLES:
            wh.con.execute(f"DELETE FROM {table}")  # names are constants
    return _POOL[:n]


def dump(wh: Warehouse) -> dict[str, list[tuple]]:
    out = {}
    for table in TABLES:
        query = f"SELECT * FROM {table}"  # names are constants
        if table == "run_stages":
            # committed_at is wall time; n_rows counts what each call did (0 new the 2nd time)
            query = "SELECT run_id, stage FROM run_stages"
        out[table] = sorted(wh.con.execute(query).fetchall(), key=repr)
    return out


def batch(picks: list[tuple[int, int]]) -> tuple[list[FetchedPage], list[Article]]:
    pages, articles = [], []
    for url_no, status_no in picks:
        url = f"https://s{url_no % 3}.example/{url_no}"
        status = STATUSES[status_no]
        pages.append(FetchedPage(url=url, final_url=url, source="s", status=status,
                                 fetched_at=NOW, etag=f'"{url_no}"'))
        if status is Reason.OK:
            articles.append(Article(article_id=f"a{url_no}", url=url, canonical_url=url,
                                    source="s", status=Reason.OK, text=f"text {url_no}",
                                    content_hash=f"h{url_no}"))
    return pages, articles


def grouping(doc_ids: list[int]) -> Grouping:
    ids = [f"a{i}" for i in doc_ids]
    return Grouping(
        assignments=tuple(Assignment(d, f"e{int(d[1:]) % 2}", f"c{d}", "new_event", 0.5)
                          for d in ids),
        events=tuple(Event(f"e{k}", "t", f"a{k}", "earliest", (f"a{k}",), 1)
                     for k in sorted({i % 2 for i in doc_ids})),
        aliases=(),
        states=tuple(DocState(d, f"e{int(d[1:]) % 2}", f"c{d}", b"p") for d in ids),
    )


picks_strategy = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 0)), max_size=25)


@settings(max_examples=10, deadline=None)
@given(picks=picks_strategy, data=st.data())
def test_loading_twice_or_reordered_gives_the_same_rows(
    picks: list[tuple[int, int]], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(picks))
    once, again = memory_warehouses(2)
    pages, articles = batch(picks)
    ids = sorted({int(a.article_id[1:]) for a in articles})
    once.load_pages("r", pages, articles, NOW)
    once.load_grouping("r", grouping(ids), NOW)
    first = dump(once)
    once.load_pages("r", pages, articles, NOW)
    once.load_grouping("r", grouping(ids), NOW)
    assert dump(once) == first  # idempotent
    s_pages, s_articles = batch(shuffled)
    again.load_pages("r", s_pages, s_articles, NOW)
    again.load_grouping("r", grouping(list(reversed(ids))), NOW)
    assert dump(again) == first  # order of a batch does not matter


@settings(max_examples=10, deadline=None)
@given(picks=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 3)), max_size=25))
def test_every_url_gets_one_fetch_row_and_one_state(picks: list[tuple[int, int]]) -> None:
    (wh,) = memory_warehouses(1)
    pages, articles = batch(picks)
    new = wh.load_pages("r", pages, articles, NOW)
    urls = {p.url for p in pages}
    assert wh.con.execute("SELECT count(*) FROM fetches").fetchone() == (len(urls),)
    assert wh.con.execute("SELECT count(*) FROM url_state").fetchone() == (len(urls),)
    assert new == {a.article_id for a in articles}
    assert wh.load_pages("r", pages, articles, NOW) == set()
