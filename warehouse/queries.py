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

from warehouse.errors import NoWarehouse, QueryError, WarehouseError, translate_open_error
from warehouse.schema import CURRENT_VERSION

__all__ = [
    "EventSummary", "NoWarehouse", "QueryError", "QueryResult", "WarehouseError",
    "event_summaries", "read_only", "run_query", "table_counts",
]

# A query connection reads the warehouse and nothing else: read-only (no statement can change
# it), and no file system access (no COPY TO, ATTACH or INSTALL writing files, no reading other
# files), with the configuration then locked so that SET cannot undo it. `newsdedup export` is
# the way to write files.
QUERY_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
}


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


@contextmanager
def read_only(path: Path, *, locked_down: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the published snapshot (never the writer file). With
    `locked_down` (the default) it can touch no other file either (see QUERY_CONFIG)."""
    path = Path(path)
    if not path.exists():
        raise NoWarehouse(
            f"no warehouse at {path}: run `newsdedup run` (or `make demo`) first, or pass the"
            " path of an existing one"
        )
    if path.is_dir():
        raise NoWarehouse(f"{path} is a directory, not a warehouse file")
    try:
        con = duckdb.connect(str(path), read_only=True, config=QUERY_CONFIG if locked_down else {})
    except duckdb.Error as exc:
        raise translate_open_error(path, exc) from exc
    con.execute("SET enable_progress_bar = false")  # results go to stdout; no bar on stderr
    if locked_down:
        con.execute("SET lock_configuration = true")
    try:
        yield con
    finally:
        con.close()


def run_query(path: Path, sql: str, params: Sequence[Any] | None = None) -> QueryResult:
    """Run SQL on a read-only, file-less connection. Anything that would write fails with
    QueryError and changes nothing."""
    with read_only(path) as con:
        try:
            cur = con.execute(sql, list(params) if params is not None else None)
            if cur.description is None:
                return QueryResult((), [])
            columns = tuple(d[0] for d in cur.description)
            return QueryResult(columns, cur.fetchall())
        except duckdb.Error as exc:
            raise _query_error(exc, schema_hint(con)) from exc


def schema_hint(con: duckdb.DuckDBPyConnection) -> str:
    """A sentence for errors on a warehouse older than this code ('' when it is current): its
    views and columns may be missing until a run migrates it."""
    try:
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    except duckdb.Error:
        return ""
    version = int(row[0]) if row and row[0] is not None else 0
    if version >= CURRENT_VERSION:
        return ""
    return (
        f" (this warehouse is at schema version {version}, this newsdedup expects"
        f" {CURRENT_VERSION}: the next `newsdedup run` migrates it)"
    )


def _query_error(exc: duckdb.Error, hint: str = "") -> QueryError:
    message = str(exc)
    if isinstance(exc, duckdb.CatalogException):
        message += hint
    lowered = message.lower()
    if "read-only" in lowered or "read only" in lowered:
        return QueryError(
            f"the warehouse is read-only for queries; nothing was changed ({message})"
        )
    if isinstance(exc, duckdb.PermissionException) or "configuration has been locked" in lowered:
        return QueryError(
            "`newsdedup query` reads the warehouse only: it cannot read or write other files"
            " or change settings; use `newsdedup export` for files, or your own"
            f" `duckdb -readonly` session; nothing was changed ({message})"
        )
    return QueryError(message)


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
