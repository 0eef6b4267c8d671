"""The warehouse schema as ordered, named migrations. Each runs once, recorded in
`schema_version`; running `migrate` again is a no-op. All times are UTC (TIMESTAMP, naive)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial schema",
        (
            """
            CREATE TABLE IF NOT EXISTS runs (
                run_id VARCHAR PRIMARY KEY,
                started_at TIMESTAMP NOT NULL,
                finished_at TIMESTAMP,
                status VARCHAR NOT NULL,            -- running | completed | failed
                config_path VARCHAR,
                n_targets INTEGER,
                n_fetched INTEGER,                  -- pages fetched with status ok
                n_not_modified INTEGER,
                n_deferred INTEGER,
                n_failed INTEGER,
                n_articles_new INTEGER,
                n_too_short INTEGER,
                n_copies INTEGER,                   -- new articles that joined a copy group
                n_events_new INTEGER,
                n_events_updated INTEGER,
                failures JSON                       -- {reason: count}
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS fetches (
                run_id VARCHAR NOT NULL,
                url VARCHAR NOT NULL,
                final_url VARCHAR,
                source VARCHAR,
                status VARCHAR NOT NULL,            -- ok | not_modified | deferred | a failure reason
                http_status INTEGER,
                content_type VARCHAR,
                n_bytes BIGINT,
                elapsed_s DOUBLE,
                attempt INTEGER,
                fetched_at TIMESTAMP,
                retry_after TIMESTAMP,
                etag VARCHAR,
                last_modified VARCHAR,
                detail VARCHAR,
                PRIMARY KEY (run_id, url)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS url_state (
                url VARCHAR PRIMARY KEY,
                etag VARCHAR,
                last_modified VARCHAR,
                retry_after TIMESTAMP,              -- deferred until then (Retry-After)
                last_status VARCHAR,
                last_fetched_at TIMESTAMP,
                article_id VARCHAR
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS articles (
                article_id VARCHAR PRIMARY KEY,
                url VARCHAR NOT NULL,
                canonical_url VARCHAR NOT NULL,
                source VARCHAR,
                sitename VARCHAR,
                title VARCHAR,
                author VARCHAR,
                published_at TIMESTAMP,
                language VARCHAR,
                text VARCHAR,
                n_words INTEGER,
                content_hash VARCHAR NOT NULL,
                status VARCHAR NOT NULL,            -- ok | too_short | extraction_failed | ...
                detail VARCHAR,
                first_seen_at TIMESTAMP NOT NULL,
                first_run_id VARCHAR NOT NULL
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS events (
                event_id VARCHAR PRIMARY KEY,
                title VARCHAR,
                canonical_article_id VARCHAR,
                canonical_rule VARCHAR,
                event_date DATE,
                place VARCHAR,
                first_published_at TIMESTAMP,
                last_published_at TIMESTAMP,
                n_articles INTEGER NOT NULL,
                n_sources INTEGER NOT NULL,
                first_seen_at TIMESTAMP NOT NULL,
                last_seen_at TIMESTAMP NOT NULL,
                last_run_id VARCHAR NOT NULL
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS event_articles (
                article_id VARCHAR PRIMARY KEY,
                event_id VARCHAR NOT NULL,
                copy_id VARCHAR NOT NULL,
                rule VARCHAR NOT NULL,              -- which step joined it (evidence)
                similarity DOUBLE,                  -- the score that step used
                matched_article_id VARCHAR,         -- the member it matched, if any
                first_seen_at TIMESTAMP NOT NULL,
                run_id VARCHAR NOT NULL
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS event_aliases (
                alias_id VARCHAR PRIMARY KEY,       -- a merged-away event id
                event_id VARCHAR NOT NULL,          -- the id that survived
                merged_at TIMESTAMP NOT NULL,
                run_id VARCHAR NOT NULL
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS dedupe_state (
                doc_id VARCHAR PRIMARY KEY,
                event_id VARCHAR,
                copy_id VARCHAR,
                payload BLOB NOT NULL,              -- signatures and fingerprint; read by dedupe/
                updated_at TIMESTAMP NOT NULL
            )
            """,
        ),
    ),
)

CURRENT_VERSION = MIGRATIONS[-1].version


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply every migration newer than the database's version, each in its own transaction.
    Returns the version the database is at afterwards."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    current = int(row[0]) if row else 0
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in migration.statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, now()::TIMESTAMP)",
                [migration.version, migration.name],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        current = migration.version
    return current
