"""The read side: read-only connections to the published snapshot, and the named queries the
CLI and the flows show to people."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from warehouse import lake
from warehouse.errors import NoWarehouse, QueryError, WarehouseError, translate_open_error
from warehouse.schema import CURRENT_VERSION

__all__ = [
    "EventSummary", "NoWarehouse", "QueryError", "QueryResult", "QueryStream", "QueryTimeout",
    "WarehouseError", "event_summaries", "open_query", "read_only", "run_query", "session_sql",
    "table_counts",
]

T = TypeVar("T")

# Rows fetched from DuckDB at a time: a result is streamed, never held whole (`SELECT * FROM
# range(300000000)` held ~2.4 GB when fetched at once).
FETCH_BATCH = 1000

# A query connection reads the published snapshot and nothing else: the lake is attached
# read-only, only SELECT and EXPLAIN statements run, and file access is limited to the lake's own
# directory (its catalog and Parquet files), with the configuration then locked so that SET
# cannot undo it. `newsdedup export` is the way to write files.
_READ_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    truncated: bool = False  # more rows than the limit asked for


class QueryTimeout(QueryError):
    """A query stopped because it ran past its time limit."""


# Set by Ctrl-C while a query command runs (_ctrl_c_as_flag).
_CTRL_C = threading.Event()


@contextmanager
def _ctrl_c_as_flag() -> Iterator[None]:
    """Within the block, Ctrl-C (SIGINT, in the main thread) sets _CTRL_C instead of raising
    KeyboardInterrupt wherever the main thread happens to be. DuckDB turns a KeyboardInterrupt
    that lands in one of its statements into "RuntimeError: Query interrupted" (a traceback,
    when Ctrl-C came while the warehouse was being opened), and on a loaded CI machine a Ctrl-C
    in that window was lost and the query ran on. The query's own waits check the flag and
    raise KeyboardInterrupt where it is safe to."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _CTRL_C.clear()
    previous = signal.signal(signal.SIGINT, lambda *_: _CTRL_C.set())
    try:
        yield
        _stop_if_ctrl_c()
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_if_ctrl_c() -> None:
    if _CTRL_C.is_set():
        raise KeyboardInterrupt


def _interruptible(con: duckdb.DuckDBPyConnection, work: Callable[[], T]) -> T:
    """work() in a helper thread, so that Ctrl-C stops it: while DuckDB runs a statement the
    main thread sits in C and Python's SIGINT handler does not run (a long query ignored
    Ctrl-C). The main thread waits here instead, takes the KeyboardInterrupt, and interrupts
    the connection."""
    box: dict[str, Any] = {}
    # An Event, not thread.is_alive(): on Python 3.11 a join() that a KeyboardInterrupt breaks
    # can leave is_alive() False while the thread still runs (the interpreter then exits under
    # it, and DuckDB aborts the process: "FATAL: exception not rethrown").
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc
        finally:
            done.set()

    _stop_if_ctrl_c()
    thread = threading.Thread(target=target, name="newsdedup-query", daemon=True)
    thread.start()
    try:
        while not done.wait(0.1):
            _stop_if_ctrl_c()
    except KeyboardInterrupt:
        # Again until it stops: an interrupt that comes before the statement starts is lost,
        # and on a loaded machine the statement may start seconds later. Closing the connection
        # under a statement still running would wait for the statement to end.
        deadline = time.monotonic() + 60.0
        while not done.is_set() and time.monotonic() < deadline:
            con.interrupt()
            done.wait(0.1)
        raise
    if "error" in box:
        error = box["error"]
        if isinstance(error, RuntimeError) and not isinstance(error, duckdb.Error):
            raise KeyboardInterrupt from error  # DuckDB's own "Query interrupted"
        raise error
    return box["value"]  # type: ignore[no-any-return]


@dataclass
class QueryStream:
    """An open query: its columns, and its rows fetched in batches as they are read."""

    columns: tuple[str, ...]
    _cursor: duckdb.DuckDBPyConnection | None
    _timeout_s: float | None = None

    def rows(self, limit: int | None = None) -> Iterator[tuple[Any, ...]]:
        """Up to `limit` rows (every row with None)."""
        if self._cursor is None:
            return
        left = limit
        while left is None or left > 0:
            size = FETCH_BATCH if left is None else min(FETCH_BATCH, left)
            cursor = self._cursor
            try:
                batch = _interruptible(cursor, lambda: cursor.fetchmany(size))  # noqa: B023
            except duckdb.Error as exc:
                raise _query_error(exc, schema_hint(cursor), self._timeout_s) from exc
            if not batch:
                return
            yield from batch
            if left is not None:
                left -= len(batch)

    def has_more(self) -> bool:
        """Whether a row is left after those read (reads it; call once, at the end)."""
        return bool(self._cursor is not None and next(self.rows(1), None) is not None)


@contextmanager
def open_query(
    path: Path, sql: str, params: Sequence[Any] | None = None, *,
    timeout_s: float | None = None, as_of_run: str | None = None,
) -> Iterator[QueryStream]:
    """Run one SQL statement on a read-only connection to the published snapshot (or the one
    `as_of_run` published) and stream its rows. More than one statement, or none, or one that
    is not SELECT or EXPLAIN, is a QueryError before anything runs; past `timeout_s` the query
    is interrupted (QueryTimeout), however far the caller has read. Ctrl-C stops it wherever
    it is, as a KeyboardInterrupt."""
    with _ctrl_c_as_flag(), read_only(path, as_of_run=as_of_run) as con:
        _stop_if_ctrl_c()
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise _query_error(exc) from exc
        if len(statements) != 1:
            raise QueryError(
                "no SQL statement given" if not statements else
                f"one statement at a time: found {len(statements)}; run each on its own"
            )
        refused = [st.type.name for st in statements if st.type not in _READ_STATEMENTS]
        if refused:
            raise QueryError(
                "the warehouse is read-only for queries: `newsdedup query` runs SELECT and"
                f" EXPLAIN (not {', '.join(refused)}), reads no other file and changes no"
                " setting; use `newsdedup export` for files, or your own DuckDB session;"
                " nothing was changed"
            )
        timer = None
        if timeout_s is not None:
            timer = threading.Timer(timeout_s, con.interrupt)
            timer.daemon = True
            timer.start()
        try:
            args = list(params) if params is not None else None
            try:
                cur = _interruptible(con, lambda: con.execute(sql, args))
            except duckdb.Error as exc:
                raise _query_error(exc, schema_hint(con), timeout_s) from exc
            if cur.description is None:
                yield QueryStream((), None)
            else:
                columns = tuple(d[0] for d in cur.description)
                yield QueryStream(columns, cur, timeout_s)
        finally:
            if timer is not None:
                timer.cancel()


def _published(con: duckdb.DuckDBPyConnection, path: Path, run_id: str | None) -> int:
    """The snapshot readers open: the newest published one, or the one `run_id` published."""
    try:
        if run_id is None:
            row = con.execute("SELECT max(snapshot_id) FROM published").fetchone()
        else:
            row = con.execute(
                "SELECT max(snapshot_id) FROM published WHERE run_id = ?", [run_id]
            ).fetchone()
    except duckdb.CatalogException:
        row = None
    if not row or row[0] is None:
        if run_id is not None:
            raise NoWarehouse(
                f"run {run_id} published nothing in {path}: list the runs with"
                " `newsdedup query \"SELECT run_id, snapshot_id FROM published\"`"
            )
        raise NoWarehouse(f"{path} has no published run yet: run `newsdedup run` first")
    return int(row[0])


@contextmanager
def read_only(
    path: Path, *, locked_down: bool = True, as_of_run: str | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the published snapshot (or, with `as_of_run`, to the one that
    run published). With `locked_down` (the default) it reads no file outside the lake and
    runs only SELECT and EXPLAIN (see run_query)."""
    path = Path(path)
    if not path.exists():
        raise NoWarehouse(
            f"no warehouse at {path}: run `newsdedup run` (or `make demo`) first, or pass the"
            " path of an existing one"
        )
    if not lake.is_lake(path):
        raise NoWarehouse(
            f"{path} is not a newsdedup warehouse (a directory with {lake.CATALOG} and"
            f" {lake.DATA}/): pass the warehouse directory"
        )
    try:
        con = lake.connect(path, read_only=True)
    except duckdb.Error as exc:
        raise translate_open_error(path, exc) from exc
    try:
        lake.attach(con, path, read_only=True, snapshot=_published(con, path, as_of_run))
    except BaseException as exc:
        con.close()
        if isinstance(exc, duckdb.Error):
            raise translate_open_error(path, exc) from exc
        raise
    if locked_down:
        root = str(path.resolve())
        con.execute(f"SET allowed_directories = [{lake.quote(root + '/')}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    try:
        yield con
    finally:
        try:
            con.close()
        except duckdb.Error:  # still busy with a statement Ctrl-C stopped: the process ends
            pass


def session_sql(path: Path, *, as_of_run: str | None = None) -> str:
    """The lines that open the published snapshot (or the one `as_of_run` published) in the
    user's own DuckDB session: `newsdedup query --session-sql`."""
    with read_only(path, locked_down=False, as_of_run=as_of_run) as con:
        snapshot = lake.current_snapshot(con)
    return lake.session_sql(path, snapshot)


def run_query(
    path: Path,
    sql: str,
    params: Sequence[Any] | None = None,
    *,
    limit: int | None = None,
    timeout_s: float | None = None,
    as_of_run: str | None = None,
) -> QueryResult:
    """Run one SQL statement on a read-only connection to the published snapshot. Anything
    that would write fails with QueryError and changes nothing. With `limit`, at most that many
    rows are read (`truncated` says whether there were more)."""
    with open_query(path, sql, params, timeout_s=timeout_s, as_of_run=as_of_run) as stream:
        rows = list(stream.rows(limit))
        truncated = limit is not None and stream.has_more()
        return QueryResult(stream.columns, rows, truncated)


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


def _query_error(
    exc: duckdb.Error, hint: str = "", timeout_s: float | None = None
) -> QueryError:
    message = str(exc)
    if isinstance(exc, duckdb.InterruptException):
        if timeout_s is not None:
            return QueryTimeout(f"the query ran longer than {timeout_s:g} s and was stopped")
        return QueryError(f"the query was interrupted ({message})")
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
