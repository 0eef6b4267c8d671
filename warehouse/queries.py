"""The read side: read-only connections to the published snapshot, and the named queries the
CLI and the flows show to people."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb


class NoWarehouse(FileNotFoundError):
    """There is no published warehouse at the path yet."""


class QueryError(ValueError):
    """A query the warehouse refused or could not run; the message says why."""


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


@contextmanager
def read_only(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the published snapshot (never the writer file)."""
    path = Path(path)
    if not path.exists():
        raise NoWarehouse(
            f"no warehouse at {path}: run `newsdedup run` (or `make demo`) first, or pass the"
            " path of an existing one"
        )
    con = duckdb.connect(str(path), read_only=True)
    try:
        yield con
    finally:
        con.close()


def run_query(path: Path, sql: str, params: Sequence[Any] | None = None) -> QueryResult:
    """Run one SQL statement on a read-only connection. Writes fail with QueryError."""
    with read_only(path) as con:
        try:
            cur = con.execute(sql, list(params) if params is not None else None)
        except duckdb.Error as exc:
            message = str(exc)
            if "read-only" in message.lower() or "read only" in message.lower():
                raise QueryError(
                    f"the warehouse is read-only for queries; nothing was changed ({message})"
                ) from exc
            raise QueryError(message) from exc
        if cur.description is None:
            return QueryResult((), [])
        columns = tuple(d[0] for d in cur.description)
        return QueryResult(columns, cur.fetchall())


@dataclass(frozen=True)
class EventSummary:
    event_id: str
    title: str | None
    event_date: str | None
    first_published_at: datetime | None
    n_articles: int
    n_sources: int
    member_titles: tuple[str, ...]


def event_summaries(con: duckdb.DuckDBPyConnection, limit: int = 50) -> list[EventSummary]:
    """Events, largest and latest first, with their members' titles."""
    rows = con.execute(
        """
        SELECT e.event_id, e.title, CAST(e.event_date AS VARCHAR), e.first_published_at,
               e.n_articles, e.n_sources,
               list(coalesce(a.title, a.url) ORDER BY a.published_at NULLS LAST, a.article_id)
        FROM events e
        JOIN event_articles ea USING (event_id)
        JOIN articles a USING (article_id)
        GROUP BY ALL
        ORDER BY e.n_articles DESC, e.first_published_at DESC NULLS LAST, e.event_id
        LIMIT ?
        """,
        [limit],
    ).fetchall()
    return [
        EventSummary(eid, title, date, first, n, ns, tuple(members))
        for eid, title, date, first, n, ns, members in rows
    ]


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    counts = {}
    for table in ("articles", "events", "event_articles", "event_aliases", "fetches", "runs"):
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()  # names are constants
        counts[table] = int(row[0]) if row else 0
    return counts
