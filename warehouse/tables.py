"""Every table's columns, declared once: name, DuckDB type, nullability, the Arrow type a load
batch carries it in, and the migration that added it. warehouse/schema.py derives its CREATE
TABLE and ADD COLUMN statements from these, and warehouse/store.py its Arrow batches, so a new
column is one line here (with `since` the new migration's version) and the rows that fill it.

A column's place is its position in the table: the columns a migration added come after the
ones before it, as ALTER TABLE ADD COLUMN put them. `since` must never change for a released
column: it is what makes migration N create exactly what it created when it was released
(tests/warehouse/test_tables.py holds the released versions' columns).

The lake has no key constraints: each table's natural key (`key`) is kept unique by the loads in
warehouse/store.py, which merge on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

# How each DuckDB type travels in an Arrow batch (a column may say otherwise: `arrow`).
_ARROW: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BLOB": pa.binary(),
    "TIMESTAMP": pa.timestamp("us"),  # naive UTC, as every time in the warehouse
    "DATE": pa.date32(),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB's
    not_null: bool = False
    since: int | None = None  # the migration that added it (None: the one creating the table)
    arrow: pa.DataType | None = None  # when a batch carries it otherwise than _ARROW says

    def __post_init__(self) -> None:
        if self.arrow is None and self.type not in _ARROW:
            raise ValueError(
                f"column {self.name}: no Arrow type for {self.type}; add it to _ARROW or pass"
                " arrow="
            )

    @property
    def arrow_type(self) -> pa.DataType:
        return self.arrow if self.arrow is not None else _ARROW[self.type]

    def sql(self) -> str:
        """The column's definition, as in CREATE TABLE and ADD COLUMN."""
        return f"{self.name} {self.type}{' NOT NULL' if self.not_null else ''}"


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    since: int = 1  # the migration that created it
    key: tuple[str, ...] = ()  # natural key, unique (kept so by the loads)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(
            c if c.since is not None else replace(c, since=self.since) for c in self.columns
        ))
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: a column is declared twice: {names}")
        if [c.since for c in self.columns] != sorted(c.since or 0 for c in self.columns):
            raise ValueError(
                f"table {self.name}: list the columns in their table order, those of later"
                " migrations last (ADD COLUMN appends)"
            )
        if any((c.since or 0) < self.since for c in self.columns):
            raise ValueError(f"table {self.name}: a column older than the table")
        if not set(self.key) <= set(names):
            raise ValueError(f"table {self.name}: key {self.key} names an unknown column")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def create_sql(self) -> str:
        """CREATE TABLE IF NOT EXISTS with the columns the table was created with."""
        body = ", ".join(c.sql() for c in self.columns if c.since == self.since)
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({body})"

    def add_columns_sql(self, version: int) -> tuple[str, ...]:
        """ALTER TABLE ADD COLUMN for each column migration `version` added to the table
        (none when that migration created it)."""
        if version == self.since:
            return ()
        return tuple(
            f"ALTER TABLE {self.name} ADD COLUMN IF NOT EXISTS {c.sql()}"
            for c in self.columns
            if c.since == version
        )

    def update_sql(self, alias: str, keep: tuple[str, ...] = ()) -> str:
        """`col = alias.col, ...` for every column but the key and `keep`: a MERGE's WHEN
        MATCHED THEN UPDATE SET list, so a new column is updated like the others."""
        unknown = set(keep) - set(self.names)
        if unknown:
            raise ValueError(f"table {self.name} has no column {sorted(unknown)}")
        return ", ".join(
            f"{n} = {alias}.{n}" for n in self.names if n not in self.key and n not in keep
        )

    def arrow_schema(self, without: frozenset[str] = frozenset()) -> pa.Schema:
        """The Arrow schema of a load batch: every column in table order, less `without` (the
        ones the load statement computes itself)."""
        unknown = without - set(self.names)
        if unknown:
            raise ValueError(f"table {self.name} has no column {sorted(unknown)}")
        return pa.schema(
            [(c.name, c.arrow_type) for c in self.columns if c.name not in without]
        )

    def batch(
        self, columns: Mapping[str, Sequence[Any]], without: frozenset[str] = frozenset()
    ) -> pa.Table:
        """A load batch, column by column. Every column of the table (less `without`) must be
        given, and no other: a column declared here that its load does not fill is an error,
        not a column of NULLs."""
        schema = self.arrow_schema(without)
        missing = [n for n in schema.names if n not in columns]
        extra = [n for n in columns if n not in schema.names]
        if missing or extra:
            raise ValueError(
                f"a batch for {self.name} must fill exactly its columns: missing {missing},"
                f" unknown {extra}"
            )
        return pa.Table.from_arrays(
            [pa.array(columns[f.name], f.type) for f in schema], schema=schema
        )


def _c(name: str, type_: str, *, not_null: bool = False, since: int | None = None,
       arrow: pa.DataType | None = None) -> Column:
    return Column(name, type_, not_null, since, arrow)


RUNS = Table("runs", (
    _c("run_id", "VARCHAR", not_null=True),
    _c("started_at", "TIMESTAMP", not_null=True),
    _c("finished_at", "TIMESTAMP"),
    _c("status", "VARCHAR", not_null=True),  # running | completed | failed | interrupted
    _c("config_path", "VARCHAR"),
    _c("n_targets", "INTEGER"),
    _c("n_fetched", "INTEGER"),  # pages fetched with status ok
    _c("n_not_modified", "INTEGER"),
    _c("n_deferred", "INTEGER"),
    _c("n_failed", "INTEGER"),
    _c("n_articles_new", "INTEGER"),
    _c("n_too_short", "INTEGER"),
    _c("n_copies", "INTEGER"),  # new articles that joined a copy group
    _c("n_events_new", "INTEGER"),
    _c("n_events_updated", "INTEGER"),
    _c("failures", "JSON"),  # {reason: count}
), key=("run_id",))

FETCHES = Table("fetches", (
    _c("run_id", "VARCHAR", not_null=True),
    _c("url", "VARCHAR", not_null=True),
    _c("final_url", "VARCHAR"),
    _c("source", "VARCHAR"),
    _c("status", "VARCHAR", not_null=True),  # ok | not_modified | deferred | a reason
    _c("http_status", "INTEGER"),
    _c("content_type", "VARCHAR"),
    _c("n_bytes", "BIGINT"),
    _c("elapsed_s", "DOUBLE"),
    _c("attempt", "INTEGER"),
    _c("fetched_at", "TIMESTAMP"),
    _c("retry_after", "TIMESTAMP"),
    _c("etag", "VARCHAR"),
    _c("last_modified", "VARCHAR"),
    _c("detail", "VARCHAR"),
    # The outlet's domain (GDELT's SourceCommonName), stored so the views need no URL parsing:
    # extract.urls.site_of.
    _c("site", "VARCHAR", since=2),
    # A page can be fetched fine and still fail to become an article; that failure is on its
    # row too (NULL when the page was never handed to extraction).
    _c("extract_status", "VARCHAR", since=2),
    _c("extract_detail", "VARCHAR", since=2),
), key=("run_id", "url"))

URL_STATE = Table("url_state", (
    _c("url", "VARCHAR", not_null=True),
    _c("etag", "VARCHAR"),
    _c("last_modified", "VARCHAR"),
    _c("retry_after", "TIMESTAMP"),  # deferred until then (Retry-After)
    _c("last_status", "VARCHAR"),
    _c("last_fetched_at", "TIMESTAMP"),
    _c("article_id", "VARCHAR"),
), key=("url",))

ARTICLES = Table("articles", (
    _c("article_id", "VARCHAR", not_null=True),
    _c("url", "VARCHAR", not_null=True),
    _c("canonical_url", "VARCHAR", not_null=True),
    _c("source", "VARCHAR"),
    _c("sitename", "VARCHAR"),
    _c("title", "VARCHAR"),
    _c("author", "VARCHAR"),
    _c("published_at", "TIMESTAMP"),
    _c("language", "VARCHAR"),
    _c("text", "VARCHAR"),
    _c("n_words", "INTEGER"),
    _c("content_hash", "VARCHAR", not_null=True),
    _c("status", "VARCHAR", not_null=True),  # ok | too_short
    _c("detail", "VARCHAR"),
    _c("first_seen_at", "TIMESTAMP", not_null=True),
    _c("first_run_id", "VARCHAR", not_null=True),
    _c("site", "VARCHAR", since=2),  # as fetches.site
    # extract.records.DateSource: meta | jsonld | time | url | text | feed; NULL when the
    # article has no date, or was loaded before migration 3. 'text' is a guess from the text.
    _c("date_source", "VARCHAR", since=3),
), key=("article_id",))

EVENTS = Table("events", (
    _c("event_id", "VARCHAR", not_null=True),
    _c("title", "VARCHAR"),
    _c("canonical_article_id", "VARCHAR"),
    _c("canonical_rule", "VARCHAR"),
    # dedupe.records.Event gives an ISO date string; DuckDB casts it on insert.
    _c("event_date", "DATE", arrow=pa.string()),
    _c("place", "VARCHAR"),
    _c("first_published_at", "TIMESTAMP"),
    _c("last_published_at", "TIMESTAMP"),
    _c("n_articles", "INTEGER", not_null=True),
    _c("n_sources", "INTEGER", not_null=True),
    _c("first_seen_at", "TIMESTAMP", not_null=True),
    _c("last_seen_at", "TIMESTAMP", not_null=True),
    _c("last_run_id", "VARCHAR", not_null=True),
), key=("event_id",))

EVENT_ARTICLES = Table("event_articles", (
    _c("article_id", "VARCHAR", not_null=True),
    _c("event_id", "VARCHAR", not_null=True),
    _c("copy_id", "VARCHAR", not_null=True),
    _c("rule", "VARCHAR", not_null=True),  # which step joined it (evidence)
    _c("similarity", "DOUBLE"),  # the score that step used
    _c("matched_article_id", "VARCHAR"),  # the member it matched, if any
    _c("first_seen_at", "TIMESTAMP", not_null=True),
    _c("run_id", "VARCHAR", not_null=True),
), key=("article_id",))

EVENT_ALIASES = Table("event_aliases", (
    _c("alias_id", "VARCHAR", not_null=True),  # a merged-away event id
    _c("event_id", "VARCHAR", not_null=True),  # the id that survived
    _c("merged_at", "TIMESTAMP", not_null=True),
    _c("run_id", "VARCHAR", not_null=True),
), key=("alias_id",))

DEDUPE_STATE = Table("dedupe_state", (
    _c("doc_id", "VARCHAR", not_null=True),
    _c("event_id", "VARCHAR"),
    _c("copy_id", "VARCHAR"),
    _c("payload", "BLOB", not_null=True),  # signatures and fingerprint; read by dedupe/
    _c("updated_at", "TIMESTAMP", not_null=True),
    # A document's event time (schema.EVENT_AT: a stated publication time, else first seen),
    # so that a run reads the open groups' state with a filter on it (dedupe_states).
    _c("event_at", "TIMESTAMP", since=4),
    # The people the document names with an age ("first last|age", dedupe.people): a run reads
    # the state of a closed event whose member names a person its new reports name
    # (dedupe_states), so that a follow-up weeks later finds its event. NULL before version 7.
    _c("people", "VARCHAR[]", since=7, arrow=pa.list_(pa.string())),
), key=("doc_id",))

# The run ledger's per-stage half: a row is written in the same transaction as the stage's
# data, so "this stage of this run is in the warehouse" is never a guess.
RUN_STAGES = Table("run_stages", (
    _c("run_id", "VARCHAR", not_null=True),
    _c("stage", "VARCHAR", not_null=True),  # load_pages | load_grouping
    _c("committed_at", "TIMESTAMP", not_null=True),
    _c("n_rows", "JSON"),  # {table: rows}
), since=2, key=("run_id", "stage"))

# One row per publish: the snapshot readers see, and the run that made it. A reader opens the
# newest row's snapshot, so it never sees a run's stages half-committed; `AT (VERSION =>
# snapshot_id)` reads the warehouse as of any earlier run.
PUBLISHED = Table("published", (
    _c("snapshot_id", "BIGINT", not_null=True),  # the lake snapshot readers open
    _c("run_id", "VARCHAR"),  # the run it completes (NULL: no run)
    _c("published_at", "TIMESTAMP", not_null=True),
), since=4)

# Maintenance (Warehouse.maintain): when it last ran and what it did.
MAINTENANCE = Table("maintenance", (
    _c("ran_at", "TIMESTAMP", not_null=True),
    _c("elapsed_s", "DOUBLE"),
    _c("files_before", "INTEGER"),
    _c("files_after", "INTEGER"),
    _c("bytes_before", "BIGINT"),
    _c("bytes_after", "BIGINT"),
    _c("snapshots_expired", "INTEGER"),
), since=4)

# Which migrations ran (warehouse.schema.migrate creates it before any migration).
SCHEMA_VERSION = Table("schema_version", (
    _c("version", "INTEGER", not_null=True),
    _c("name", "VARCHAR", not_null=True),
    _c("applied_at", "TIMESTAMP", not_null=True),
), since=0, key=("version",))

# The tables the migrations create, in the order they create them.
TABLES: tuple[Table, ...] = (
    RUNS, FETCHES, URL_STATE, ARTICLES, EVENTS, EVENT_ARTICLES, EVENT_ALIASES, DEDUPE_STATE,
    RUN_STAGES, PUBLISHED, MAINTENANCE,
)
