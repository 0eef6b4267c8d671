"""The write side of the warehouse: one writer at a time, one transaction per stage (with its
row in the run ledger), bulk loads through Arrow, and a published snapshot for readers.

The warehouse is a DuckLake at `<path>` (warehouse/lake.py): every transaction below is one
lake commit, one snapshot. Readers in other processes open snapshots while the writer works;
`publish()` records the newest snapshot in `published`, one small commit however large the
warehouse, and readers (`newsdedup query`, export, a user's own session) open the newest
published snapshot, so they never see a run's stages half-committed.

Why it never loses a row: every stage is one transaction (a DuckLake commit is one catalog
transaction: a process killed before it leaves only unreferenced files, which maintenance
deletes, and none of its rows), loads are idempotent on natural keys (the lake has no key
constraints: the loads merge on them), and the next run picks up what a killed run left between
stages (`ungrouped_documents`). A lock file `<path>.lock` makes the whole writer session
exclusive.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import duckdb

from dedupe.people import PERSON_DAYS
from dedupe.records import DocState, Document, Grouping
from extract.records import Article, DateSource, FetchedPage, Reason, Validators
from extract.urls import site_of
from warehouse import lake, tables
from warehouse.errors import WarehouseBusy, WarehouseCorrupt, WarehouseError
from warehouse.schema import EVENT_AT, migrate

__all__ = [
    "RunCounts", "UrlState", "Warehouse", "WarehouseBusy", "WarehouseCorrupt", "WarehouseError",
    "hold_run_lock",
]

# Called with the name of each step a writer passes ("load_pages:written", ...). Tests use it to
# kill a loading process at an exact point; production code passes nothing.
StepHook = Callable[[str], None]



def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@contextmanager
def _exclusive(lock_file: Path, what: str, wait_s: float) -> Iterator[None]:
    """An flock on lock_file, polled for up to wait_s seconds, else WarehouseBusy."""
    fh: IO[bytes] = open(lock_file, "ab")  # noqa: SIM115 - held until the block ends
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(
                        f"{what} is held by another process ({lock_file} is locked): a run is"
                        " already loading; wait for it to finish (readers are not affected)"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        fh.close()  # closing the descriptor releases the lock


@contextmanager
def hold_run_lock(path: Path, wait_s: float = 0.0) -> Iterator[None]:
    """Hold `<path>.run.lock` for a whole run: a second run fails at once with WarehouseBusy,
    before it starts Prefect (`newsdedup run` tries it first), and a run may mark the runs
    still 'running' as interrupted (no live one holds the lock)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(path.with_name(path.name + ".run.lock"), f"the run lock of {path}", wait_s):
        yield


@dataclass(frozen=True)
class UrlState:
    validators: Validators
    retry_after: datetime | None
    article_id: str | None


@dataclass(frozen=True)
class RunCounts:
    n_targets: int = 0
    n_fetched: int = 0
    n_not_modified: int = 0
    n_deferred: int = 0
    n_failed: int = 0
    n_articles_new: int = 0
    n_too_short: int = 0
    n_copies: int = 0
    n_events_new: int = 0
    n_events_updated: int = 0
    failures: Mapping[str, int] | None = None


_EVENT_UPDATE = tables.EVENTS.update_sql("b", keep=("first_seen_at",))

# Maintenance compacts small files into files of about this size (see Warehouse.maintain).
TARGET_FILE_SIZE = "64MB"


class Warehouse:
    """The single writer. Use as a context manager: `with Warehouse.open(path) as wh: ...`.
    A run opens one and passes it to every stage (flows/pipeline.py): the lock file, the lake's
    extensions and its catalog are taken once a run."""

    def __init__(
        self, path: Path, con: duckdb.DuckDBPyConnection, on_step: StepHook | None = None
    ) -> None:
        self.path = Path(path)
        self.con = con
        self.on_step = on_step
        self.changed = False  # this session wrote something: publish() records a snapshot
        self.in_transaction = False  # inside atomic(): a statement now would join its work
        self.last_run_id: str | None = None  # the run a publish completes

    @classmethod
    @contextmanager
    def open(
        cls,
        path: Path,
        *,
        publish: bool = True,
        wait_s: float = 0.0,
        on_step: StepHook | None = None,
    ) -> Iterator[Warehouse]:
        """Open the writer for `path` (creating or migrating it) and, when the block ends
        without an error and `publish` is true, publish the snapshot. Raises WarehouseBusy when
        another process holds the writer for longer than `wait_s` seconds."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            raise WarehouseCorrupt(
                f"{path} is a file, and the warehouse is now a DuckLake directory (catalog.sqlite"
                " and data/): point [warehouse] path at a new directory; docs/design.md shows how"
                " to copy an old DuckDB file's tables into it"
            )
        with _exclusive(lock_path(path), f"the writer of {path}", wait_s):
            try:
                con = lake.connect(path)
            except duckdb.Error as exc:
                raise WarehouseError(f"could not open the lake at {path}: {exc}") from exc
            try:
                try:
                    migrate(con)
                except duckdb.Error as exc:
                    raise WarehouseError(f"could not migrate {path}: {exc}") from exc
                wh = cls(path, con, on_step)
                yield wh
                if publish:
                    wh.publish()
            finally:
                con.close()

    def _step(self, name: str) -> None:
        if self.on_step is not None:
            self.on_step(name)

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def atomic(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction. Driver errors leave as WarehouseError, after the rollback."""
        self.con.execute("BEGIN TRANSACTION")
        self.in_transaction = True
        try:
            yield self.con
            self.con.execute("COMMIT")
        except BaseException as exc:
            try:
                self.con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # the commit itself failed: DuckDB has already rolled back
            if isinstance(exc, duckdb.Error):
                raise WarehouseError(
                    f"a write to {self.path} failed and was rolled back: {exc}"
                ) from exc
            raise
        finally:
            self.in_transaction = False
        self.changed = True

    def _ledger(self, run_id: str, stage: str, n_rows: Mapping[str, int]) -> None:
        """The stage's row in the run ledger, written inside the stage's transaction."""
        self.con.execute("DELETE FROM run_stages WHERE run_id = ? AND stage = ?", [run_id, stage])
        self.con.execute(
            "INSERT INTO run_stages (run_id, stage, committed_at, n_rows)"
            " VALUES (?, ?, now()::TIMESTAMP, ?)",
            [run_id, stage, json.dumps(dict(n_rows), sort_keys=True)],
        )

    # -- run ledger ---------------------------------------------------------------------------

    def start_run(self, run_id: str, started_at: datetime, config_path: str | None) -> None:
        self.con.execute(
            "INSERT INTO runs (run_id, started_at, status, config_path)"
            " SELECT ?, ?, 'running', ? WHERE NOT EXISTS (SELECT 1 FROM runs WHERE run_id = ?)",
            [run_id, _naive_utc(started_at), config_path, run_id],
        )
        self.last_run_id = run_id
        self.changed = True

    def mark_interrupted_runs(self, current_run_id: str) -> int:
        """Mark runs still 'running' other than the current one as 'interrupted' (killed before
        finish_run). Only meaningful while holding `hold_run_lock`, which rules out a live one.
        Returns how many were marked."""
        row = self.con.execute(
            "UPDATE runs SET status = 'interrupted' WHERE status = 'running' AND run_id <> ?",
            [current_run_id],
        ).fetchone()
        self.changed = True
        return int(row[0]) if row else 0

    def finish_run(
        self, run_id: str, finished_at: datetime, counts: RunCounts, status: str = "completed"
    ) -> None:
        self.con.execute(
            """
            UPDATE runs SET finished_at = ?, status = ?, n_targets = ?, n_fetched = ?,
                n_not_modified = ?, n_deferred = ?, n_failed = ?, n_articles_new = ?,
                n_too_short = ?, n_copies = ?, n_events_new = ?, n_events_updated = ?,
                failures = ?
            WHERE run_id = ?
            """,
            [
                _naive_utc(finished_at), status, counts.n_targets, counts.n_fetched,
                counts.n_not_modified, counts.n_deferred, counts.n_failed, counts.n_articles_new,
                counts.n_too_short, counts.n_copies, counts.n_events_new,
                counts.n_events_updated, json.dumps(dict(counts.failures or {}), sort_keys=True),
                run_id,
            ],
        )
        self.last_run_id = run_id
        self.changed = True

    # -- reads the pipeline needs -------------------------------------------------------------

    def url_states(self, urls: Iterable[str]) -> dict[str, UrlState]:
        """The stored state of `urls` (the ones a run discovered), not of every URL ever seen."""
        wanted = sorted(set(urls))
        if not wanted:
            return {}
        rows = self.con.execute(
            "SELECT url, etag, last_modified, retry_after, article_id FROM url_state"
            " WHERE url IN (SELECT unnest(?::VARCHAR[]))",
            [wanted],
        ).fetchall()
        return {
            url: UrlState(Validators(etag, last_modified), retry_after, article_id)
            for url, etag, last_modified, retry_after, article_id in rows
        }

    def dedupe_states(
        self, since: datetime | None = None, people: frozenset[str] = frozenset()
    ) -> list[DocState]:
        """The grouping state of the open groups: every document of an event (or, for a
        document without one, of its copy group) with a member whose event time (published_at,
        else first seen) is at or after `since`, or that names one of `people` (the new
        documents', dedupe.window.people_named) and is at most PERSON_DAYS older than `since`.
        `since=None` reads every state (small tools). dedupe.window.open_states is the rule.

        Two reads: the open groups' keys from the members since `since` (a filter on the
        event_at column, which the lake answers from its files' min/max statistics) and from
        those naming the people, then the payloads of those groups only."""
        if since is None:
            rows = self.con.execute(
                "SELECT doc_id, event_id, copy_id, payload, people FROM dedupe_state"
                " ORDER BY doc_id"
            ).fetchall()
            return [DocState(d, e, c, bytes(p), tuple(n or ())) for d, e, c, p, n in rows]
        # Most runs name nobody with an age: they read as before, on event_at alone.
        followed = (
            """
                UNION
                SELECT coalesce(event_id, copy_id, doc_id) FROM dedupe_state
                WHERE event_at >= ? AND list_has_any(people, ?::VARCHAR[])"""
            if people else ""
        )
        params: list[Any] = [_naive_utc(since)]
        if people:
            params += [_naive_utc(since - timedelta(days=PERSON_DAYS)), sorted(people)]
        rows = self.con.execute(
            f"""
            WITH open_groups AS (
                SELECT DISTINCT coalesce(event_id, copy_id, doc_id) AS g
                FROM dedupe_state WHERE event_at >= ?{followed}
            )
            SELECT doc_id, event_id, copy_id, payload, people FROM dedupe_state
            WHERE coalesce(event_id, copy_id, doc_id) IN (SELECT g FROM open_groups)
            ORDER BY doc_id
            """,
            params,
        ).fetchall()
        return [DocState(d, e, c, bytes(p), tuple(n or ())) for d, e, c, p, n in rows]

    def ungrouped_documents(self) -> list[Document]:
        """Articles that extracted well but have no grouping state yet: this run's new ones, and
        any a killed run loaded without grouping. Only the articles of runs whose pages are
        loaded and whose grouping is not are looked at, never every text."""
        pending = [
            r[0]
            for r in self.con.execute(
                "SELECT run_id FROM run_stages WHERE stage = 'load_pages' EXCEPT"
                " SELECT run_id FROM run_stages WHERE stage = 'load_grouping'"
            ).fetchall()
        ]
        if not pending:
            return []
        # Their articles were first seen after those runs started: a filter the lake answers
        # from file statistics, so the texts of older files are never read. (A run id without
        # a `runs` row, as some tests load, falls back to the epoch.)
        row = self.con.execute(
            "SELECT coalesce(min(started_at), TIMESTAMP '1970-01-01') FROM runs"
            " WHERE run_id IN (SELECT unnest(?::VARCHAR[]))"
            " HAVING count(*) = len(?::VARCHAR[])",
            [pending, pending],
        ).fetchone()
        seen_since = row[0] if row else datetime(1970, 1, 1)
        rows = self.con.execute(
            """
            SELECT a.article_id, a.text, coalesce(a.title, ''), a.canonical_url,
                   coalesce(a.sitename, ''), a.published_at, a.date_source
            FROM articles a ANTI JOIN dedupe_state s ON s.doc_id = a.article_id
            WHERE a.status = 'ok' AND a.first_seen_at >= ? AND a.first_run_id >= ?
              AND a.first_run_id IN (SELECT unnest(?::VARCHAR[]))
            ORDER BY a.article_id
            """,
            [seen_since, min(pending), pending],
        ).fetchall()
        return [
            Document(
                doc_id=aid, text=text, title=title, url=url,
                source=sitename or site_of(url),
                published_at=published.replace(tzinfo=UTC) if published else None,
                date_guessed=date_source == DateSource.TEXT,
            )
            for aid, text, title, url, sitename, published, date_source in rows
        ]

    # -- loads --------------------------------------------------------------------------------

    def load_pages(
        self,
        run_id: str,
        pages: Sequence[FetchedPage],
        articles: Sequence[Article],
        now: datetime,
    ) -> set[str]:
        """Record every fetch outcome, the URLs' validators and the articles, in one transaction.
        Returns the ids of articles that were not in the warehouse before.

        The batch is deduplicated first (one fetch row and one url_state row per URL, the last
        outcome winning; one article per article_id, the first winning) and written column by
        column through Arrow: building per-row dicts cost a third of a 100,000-article load."""
        now_n = _naive_utc(now)
        article_by_url = {a.url: a for a in articles}
        last = list({p.url: p for p in pages}.values())
        done = [article_by_url.get(p.url) if p.status is Reason.OK else None for p in last]
        # Validators only for a page that became an article (or was too short): a page whose
        # extraction failed is fetched whole next time, so a transient failure (an extraction
        # timeout) is retried instead of answered 304 Not Modified forever.
        keep = [
            p.status is Reason.OK and (a is None or a.status in (Reason.OK, Reason.TOO_SHORT))
            for p, a in zip(last, done, strict=True)
        ]
        fetched_at = [_naive_utc(p.fetched_at) for p in last]
        retry_after = [_naive_utc(p.retry_after) for p in last]
        status = [str(p.status) for p in last]
        urls = [p.url for p in last]
        fetch_table = tables.FETCHES.batch({
            "run_id": [run_id] * len(last), "url": urls,
            "final_url": [p.final_url for p in last], "source": [p.source for p in last],
            "status": status, "http_status": [p.http_status for p in last],
            "content_type": [p.content_type for p in last],
            "n_bytes": [p.n_bytes for p in last], "elapsed_s": [p.elapsed_s for p in last],
            "attempt": [p.attempt for p in last], "fetched_at": fetched_at,
            "retry_after": retry_after, "etag": [p.etag for p in last],
            "last_modified": [p.last_modified for p in last],
            "detail": [p.detail[:2000] for p in last], "site": [site_of(u) or None for u in urls],
            "extract_status": [str(a.status) if a is not None else None for a in done],
            "extract_detail": [a.detail[:2000] if a is not None else None for a in done],
        })
        state_table = tables.URL_STATE.batch({
            "url": urls,
            "etag": [p.etag if k else None for p, k in zip(last, keep, strict=True)],
            "last_modified": [
                p.last_modified if k else None for p, k in zip(last, keep, strict=True)
            ],
            "retry_after": retry_after, "last_status": status, "last_fetched_at": fetched_at,
            "article_id": [
                a.article_id if (a := article_by_url.get(p.url)) is not None and a.ok else None
                for p in last
            ],
        })
        unique: dict[str, Article] = {}
        for a in articles:
            if a.status in (Reason.OK, Reason.TOO_SHORT):
                unique.setdefault(a.article_id, a)
        kept = list(unique.values())
        article_table = tables.ARTICLES.batch({
            "article_id": list(unique), "url": [a.url for a in kept],
            "canonical_url": [a.canonical_url for a in kept], "source": [a.source for a in kept],
            "sitename": [a.sitename for a in kept], "title": [a.title for a in kept],
            "author": [a.author for a in kept],
            "published_at": [_naive_utc(a.published_at) for a in kept],
            "date_source": [str(a.date_source) if a.date_source else None for a in kept],
            "language": [a.language for a in kept], "text": [a.text for a in kept],
            "n_words": [len(a.text.split()) for a in kept],
            "content_hash": [a.content_hash for a in kept],
            "status": [str(a.status) for a in kept], "detail": [a.detail for a in kept],
            "first_seen_at": [now_n] * len(kept), "first_run_id": [run_id] * len(kept),
            "site": [site_of(a.url) or None for a in kept],
        })
        with self.atomic() as con:
            before = {
                r[0]
                for r in con.execute(
                    "SELECT article_id FROM articles WHERE article_id IN"
                    " (SELECT unnest(?::VARCHAR[]))",
                    [list(unique)],
                ).fetchall()
            }
            if last:
                con.register("fetch_batch", fetch_table)
                # The same run loading a URL again (a retried task) replaces its outcome.
                con.execute(
                    "DELETE FROM fetches WHERE run_id = ? AND url IN (SELECT url FROM fetch_batch)",
                    [run_id],
                )
                con.execute("INSERT INTO fetches BY NAME SELECT * FROM fetch_batch")
                con.unregister("fetch_batch")
                con.register("state_batch", state_table)
                con.execute(
                    """
                    MERGE INTO url_state USING state_batch AS b ON url_state.url = b.url
                    WHEN MATCHED THEN UPDATE SET
                        etag = coalesce(b.etag, CASE WHEN b.last_status
                            = 'not_modified' THEN url_state.etag END),
                        last_modified = coalesce(b.last_modified, CASE WHEN
                            b.last_status = 'not_modified' THEN url_state.last_modified END),
                        retry_after = b.retry_after,
                        last_status = b.last_status,
                        last_fetched_at = b.last_fetched_at,
                        article_id = coalesce(b.article_id, url_state.article_id)
                    WHEN NOT MATCHED THEN INSERT BY NAME
                    """
                )
                con.unregister("state_batch")
            if kept:
                con.register("article_batch", article_table)
                # Articles are immutable once stored: insert the ones not there yet (an anti
                # join; the batch has no duplicate keys, deduplicated above).
                con.execute(
                    "INSERT INTO articles BY NAME SELECT * FROM article_batch b"
                    " WHERE NOT EXISTS (SELECT 1 FROM articles a WHERE a.article_id = b.article_id)"
                )
                con.unregister("article_batch")
            new_ids = set(unique) - before
            self._ledger(run_id, "load_pages", {
                "fetches": len(last), "url_state": len(last), "articles_new": len(new_ids),
            })
            self._step("load_pages:written")
        self._step("load_pages:committed")
        return new_ids

    def load_grouping(self, run_id: str, grouping: Grouping, now: datetime) -> tuple[int, int]:
        """Write one grouping in one transaction. Returns (new events, updated events)."""
        now_n = _naive_utc(now)
        # One row per key, the last one winning, as the batches must have (see load_pages).
        members = [
            a for a in {a.doc_id: a for a in grouping.assignments}.values()
            if a.event_id is not None and a.copy_id is not None
        ]
        states = list({s.doc_id: s for s in grouping.states}.values())
        events = {e.event_id: e for e in grouping.events}
        aliases = dict(grouping.aliases)  # merged-away id -> survivor
        member_batch = tables.EVENT_ARTICLES.batch({
            "article_id": [a.doc_id for a in members], "event_id": [a.event_id for a in members],
            "copy_id": [a.copy_id for a in members], "rule": [a.rule for a in members],
            "similarity": [a.similarity for a in members],
            "matched_article_id": [a.matched_doc_id for a in members],
            "first_seen_at": [now_n] * len(members), "run_id": [run_id] * len(members),
        })
        # event_at is computed by the MERGE below, from the document's article.
        state_batch = tables.DEDUPE_STATE.batch({
            "doc_id": [s.doc_id for s in states], "event_id": [s.event_id for s in states],
            "copy_id": [s.copy_id for s in states], "payload": [s.payload for s in states],
            "updated_at": [now_n] * len(states), "people": [list(s.people) for s in states],
        }, without=frozenset({"event_at"}))
        kept = list(events.values())
        event_batch = tables.EVENTS.batch({
            "event_id": list(events), "title": [e.title for e in kept],
            "canonical_article_id": [e.canonical_doc_id for e in kept],
            "canonical_rule": [e.canonical_rule for e in kept],
            "event_date": [e.event_date for e in kept], "place": [e.place for e in kept],
            "first_published_at": [_naive_utc(e.first_published_at) for e in kept],
            "last_published_at": [_naive_utc(e.last_published_at) for e in kept],
            "n_articles": [len(e.member_ids) for e in kept],
            "n_sources": [e.n_sources for e in kept],
            "first_seen_at": [now_n] * len(kept), "last_seen_at": [now_n] * len(kept),
            "last_run_id": [run_id] * len(kept),
        })
        alias_batch = tables.EVENT_ALIASES.batch({
            "alias_id": list(aliases), "event_id": list(aliases.values()),
            "merged_at": [now_n] * len(aliases), "run_id": [run_id] * len(aliases),
        })
        with self.atomic() as con:
            existing = {
                r[0]
                for r in con.execute(
                    "SELECT event_id FROM events WHERE event_id IN (SELECT unnest(?::VARCHAR[]))",
                    [list(events)],
                ).fetchall()
            }
            # An event id written again is alive: an older alias of it (merged away once,
            # formed again since) must no longer redirect its members.
            revived = [e for e in events if e not in aliases]
            con.execute(
                "DELETE FROM event_aliases WHERE alias_id IN (SELECT unnest(?::VARCHAR[]))",
                [revived],
            )
            if members:
                con.register("member_batch", member_batch)
                con.execute(
                    """
                    MERGE INTO event_articles USING member_batch AS b
                        ON event_articles.article_id = b.article_id
                    WHEN MATCHED THEN UPDATE SET event_id = b.event_id, copy_id = b.copy_id
                    WHEN NOT MATCHED THEN INSERT BY NAME
                    """
                )
                con.unregister("member_batch")
            if states:
                con.register("dstate_batch", state_batch)
                # event_at: the document's event time, which dedupe_states() filters on.
                con.execute(
                    f"""
                    MERGE INTO dedupe_state USING (
                        SELECT s.*, {EVENT_AT} AS event_at
                        FROM dstate_batch s LEFT JOIN articles a ON a.article_id = s.doc_id
                    ) AS b ON dedupe_state.doc_id = b.doc_id
                    WHEN MATCHED THEN UPDATE SET event_id = b.event_id, copy_id = b.copy_id,
                        payload = b.payload, updated_at = b.updated_at, people = b.people,
                        event_at = coalesce(b.event_at, dedupe_state.event_at)
                    WHEN NOT MATCHED THEN INSERT BY NAME
                    """
                )
                # Prior members whose event or copy changed (merges) follow their state.
                con.execute(
                    """
                    UPDATE event_articles SET event_id = s.event_id, copy_id = s.copy_id
                    FROM dstate_batch s
                    WHERE event_articles.article_id = s.doc_id AND s.event_id IS NOT NULL
                      AND (event_articles.event_id <> s.event_id
                           OR event_articles.copy_id <> s.copy_id)
                    """
                )
                con.unregister("dstate_batch")
            if aliases:
                con.register("alias_batch", alias_batch)
                con.execute(
                    """
                    MERGE INTO event_aliases USING alias_batch AS b
                        ON event_aliases.alias_id = b.alias_id
                    WHEN MATCHED THEN UPDATE SET event_id = b.event_id
                    WHEN NOT MATCHED THEN INSERT BY NAME
                    """
                )
                con.execute(
                    "DELETE FROM events WHERE event_id IN (SELECT alias_id FROM alias_batch)"
                )
                con.unregister("alias_batch")
                _flatten_aliases(con)
                # Members still filed under a merged-away id (their state did not change) follow
                # the alias to the survivor, so no article points at a deleted event.
                con.execute(
                    """
                    UPDATE event_articles SET event_id = al.event_id FROM event_aliases al
                    WHERE event_articles.event_id = al.alias_id
                    """
                )
            if events:
                con.register("event_batch", event_batch)
                # A regrouped event takes every column of its new row but first_seen_at.
                con.execute(
                    f"""
                    MERGE INTO events USING event_batch AS b ON events.event_id = b.event_id
                    WHEN MATCHED THEN UPDATE SET {_EVENT_UPDATE}
                    WHEN NOT MATCHED THEN INSERT BY NAME
                    """
                )
                con.unregister("event_batch")
            n_new = len(set(events) - existing)
            self._ledger(run_id, "load_grouping", {
                "event_articles": len(members), "dedupe_state": len(states),
                "events": len(events), "event_aliases": len(aliases),
            })
            self._step("load_grouping:written")
        self._step("load_grouping:committed")
        return n_new, len(events) - n_new

    # -- a run's counts, from what it loaded ---------------------------------------------------

    def count_run(self, run_id: str) -> RunCounts:
        """What the warehouse knows of a run's outcome, counted from the rows it loaded: pages
        fetched, not modified and deferred, failures by reason (the `failures` view: one
        definition of a failure), new articles and the too-short ones among them. The flow adds
        what only it knows (targets, copies, events) before `finish_run`."""
        fetched = self.con.execute(
            "SELECT count(*) FILTER (WHERE status = 'ok'),"
            " count(*) FILTER (WHERE status = 'not_modified'),"
            " count(*) FILTER (WHERE status = 'deferred')"
            " FROM fetches WHERE run_id = ?",
            [run_id],
        ).fetchone()
        failures = dict(self.con.execute(
            "SELECT reason, count(*) FROM failures WHERE run_id = ? GROUP BY reason"
            " ORDER BY reason",
            [run_id],
        ).fetchall())
        stored = self.con.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'too_short')"
            " FROM articles WHERE first_run_id = ?",
            [run_id],
        ).fetchone()
        assert fetched is not None and stored is not None  # aggregates always return a row
        return RunCounts(
            n_fetched=fetched[0], n_not_modified=fetched[1], n_deferred=fetched[2],
            n_failed=sum(failures.values()), n_articles_new=stored[0], n_too_short=stored[1],
            failures=failures,
        )

    def failures_by_site(self, run_id: str) -> dict[str, int]:
        """A run's failures per site, most first ('(local)' for files and WARC records)."""
        return dict(self.con.execute(
            "SELECT coalesce(site, '(local)') AS domain, count(*) AS n FROM failures"
            " WHERE run_id = ? GROUP BY domain ORDER BY n DESC, domain",
            [run_id],
        ).fetchall())

    # -- publishing ---------------------------------------------------------------------------

    def publish(self, *, force: bool = False) -> bool:
        """Make what this session committed visible to readers: record the lake's current
        snapshot in `published`, one small commit whatever the warehouse's size. Skips it when
        this session wrote nothing and a snapshot is already published, unless `force`.
        Returns whether it published."""
        if not force and not self.changed and self.published_snapshot() is not None:
            return False
        # The marker names its own snapshot (the next id: snapshot ids count commits, and this
        # session holds the only writer), so the published snapshot lists itself too.
        snapshot = lake.current_snapshot(self.con) + 1
        self._step("publish:snapshot")
        try:
            self.con.execute(
                "INSERT INTO published (snapshot_id, run_id, published_at)"
                " VALUES (?, ?, now()::TIMESTAMP)",
                [snapshot, self.last_run_id],
            )
        except duckdb.Error as exc:
            raise WarehouseError(f"could not publish {self.path}: {exc}") from exc
        if lake.current_snapshot(self.con) != snapshot:
            raise WarehouseError(
                f"{self.path}: another writer committed while publishing (snapshot"
                f" {lake.current_snapshot(self.con)}, expected {snapshot}); run again"
            )
        self._step("publish:committed")
        self.changed = False
        return True

    def published_snapshot(self) -> int | None:
        row = self.con.execute("SELECT max(snapshot_id) FROM published").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    # -- maintenance --------------------------------------------------------------------------

    def maintain(self, now: datetime, keep_days: float) -> dict[str, float]:
        """Keep the lake's file count and disk bounded: merge small files (each run adds a few
        per table), expire snapshots older than `keep_days` (time travel reaches back that far;
        the newest published snapshot is always kept), and delete the files no snapshot needs
        any more (including those of commits killed before they happened). Returns what it
        did, which is also a row of `maintenance`."""
        t0 = time.perf_counter()
        files_before, bytes_before = lake.data_files(self.path)
        cutoff = _naive_utc(now - timedelta(days=keep_days))
        published = self.published_snapshot()
        con = self.con
        try:
            # Compaction merges files smaller than the target into files of about that size
            # and leaves larger ones alone: a day's small files are merged, the history's big
            # files are not rewritten again (DuckLake's default target is 512 MB, whose merges
            # took 2.3 GiB of memory on 200,000 articles of history).
            con.execute(
                f"CALL ducklake_set_option('{lake.ALIAS}', 'target_file_size', ?)",
                [TARGET_FILE_SIZE],
            )
            con.execute(f"CALL ducklake_merge_adjacent_files('{lake.ALIAS}')")
            # Rewrite files that are mostly deleted rows (merges rewrite grouping state rows).
            con.execute(f"CALL ducklake_rewrite_data_files('{lake.ALIAS}')")
            keep_from = con.execute(
                f"SELECT min(snapshot_time) FROM {lake.ALIAS}.snapshots()"
                " WHERE snapshot_id >= ?",
                [published if published is not None else 0],
            ).fetchone()
            older_than = cutoff
            if keep_from and keep_from[0] is not None:
                older_than = min(cutoff, _naive_utc(keep_from[0]))  # type: ignore[type-var]
            expired = con.execute(
                f"CALL ducklake_expire_snapshots('{lake.ALIAS}', older_than => ?::TIMESTAMPTZ)",
                [older_than],
            ).fetchall()
            con.execute(f"CALL ducklake_cleanup_old_files('{lake.ALIAS}', cleanup_all => true)")
            con.execute(
                f"CALL ducklake_delete_orphaned_files('{lake.ALIAS}', cleanup_all => true)"
            )
        except duckdb.Error as exc:
            raise WarehouseError(f"maintenance of {self.path} failed: {exc}") from exc
        files_after, bytes_after = lake.data_files(self.path)
        report = {
            "elapsed_s": round(time.perf_counter() - t0, 3),
            "files_before": files_before, "files_after": files_after,
            "bytes_before": bytes_before, "bytes_after": bytes_after,
            "snapshots_expired": len(expired),
        }
        self.con.register("maintenance_row", tables.MAINTENANCE.batch({
            "ran_at": [_naive_utc(now)], **{name: [value] for name, value in report.items()},
        }))
        self.con.execute("INSERT INTO maintenance BY NAME SELECT * FROM maintenance_row")
        self.con.unregister("maintenance_row")
        self.changed = True
        return report

    def maintenance_due(self, now: datetime, every_hours: float) -> bool:
        row = self.con.execute("SELECT max(ran_at) FROM maintenance").fetchone()
        last = row[0] if row else None
        return last is None or _naive_utc(now) - last >= timedelta(hours=every_hours)  # type: ignore[operator]



def _flatten_aliases(con: duckdb.DuckDBPyConnection) -> None:
    """Point every alias at the final survivor (a -> b, b -> c becomes a -> c, b -> c).
    Each pass shortens every chain by at least one link, so chains of any length in the table
    end within as many passes as their length; 64 passes bound a cycle that dedupe/ should never
    produce."""
    for _ in range(64):
        row = con.execute(
            """
            UPDATE event_aliases SET event_id = nxt.event_id FROM event_aliases nxt
            WHERE event_aliases.event_id = nxt.alias_id AND nxt.event_id <> event_aliases.alias_id
            """
        ).fetchone()
        if not row or row[0] == 0:
            return
