"""The warehouse schema as ordered, named migrations. Each runs once, in one transaction,
recorded in `schema_version`; running `migrate` again is a no-op. All times are UTC (TIMESTAMP,
naive).

The tables' columns are declared once, in warehouse/tables.py; the statements that create a
table or add a column are derived from the columns whose `since` is a migration's version
(`_ddl`). The tables live in a DuckLake (warehouse/lake.py), which has no key constraints: each
table's natural key (`Table.key`) is kept unique by the loads in warehouse/store.py, which
merge on it. Migrations 1 and 2 were written for the DuckDB file the warehouse used to be; in
the lake they create the same tables without the PRIMARY KEY clauses.

Rules for changing the schema: never edit a released migration's meaning (nor the `since` of a
released column: tests/warehouse/test_tables.py pins what each released migration creates);
append a new one. A new column is its line in warehouse/tables.py, `since` the new version,
and a migration whose statements begin with `*_ddl(version)`. Statements are written to be
safe even if run twice (IF NOT EXISTS, CREATE OR REPLACE VIEW), and
a migration that changes a view restates the whole view."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from extract.records import DateSource
from warehouse.tables import SCHEMA_VERSION, TABLES


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


# The host of a URL in SQL, as extract.urls.site_of computes it in Python.
_SITE_OF = (
    "nullif(regexp_replace(lower(regexp_extract({col},"
    " '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^:/?#]*)', 1)), '^www\\.', ''), '')"
)

# A document's event time, which the open window filters on (Warehouse.dedupe_states): the
# publication time the publisher stated, else when the article was first seen. A date guessed
# from the body text ("2003-01-01" for a page that mentions 2003) says nothing of when the
# article appeared: with it, an undated page's event would close years ago and the next run's
# write-ups of the same happening could not join it. `a` is the articles row.
EVENT_AT = (
    f"coalesce(CASE WHEN a.date_source = '{DateSource.TEXT.value}' THEN NULL"
    " ELSE a.published_at END, a.first_seen_at)"
)

# Outcomes of a fetch that are not failures: the one definition (a run's counts come from the
# `failures` view built on it, Warehouse.count_run).
_NOT_FAILED = "('ok', 'not_modified', 'deferred')"

# source_stats' fetch side, per site: every version of the view states it so.
_FETCHED_BY_SITE = f"""
        SELECT site, list(DISTINCT source ORDER BY source) AS sources,
               count(*) AS n_fetches,
               count(*) FILTER (WHERE status = 'ok') AS n_fetched_ok,
               count(*) FILTER (WHERE status = 'not_modified') AS n_not_modified,
               count(*) FILTER (WHERE status NOT IN {_NOT_FAILED}
                   OR (status = 'ok' AND extract_status IS NOT NULL
                       AND extract_status NOT IN ('ok', 'too_short'))) AS n_failures,
               max(fetched_at) AS last_fetched_at
        FROM fetches GROUP BY site
    """

# Views for the questions people ask of GDELT-like data. CREATE OR REPLACE: a later migration
# that changes a view restates it whole.
# source_stats' result per site, from its `fetched` and `stored` sides: every version of the
# view ends so.
_SITE_STATS = """    SELECT coalesce(f.site, s.site) AS site, coalesce(f.sources, []) AS sources,
           coalesce(s.n_articles, 0) AS n_articles, coalesce(s.n_too_short, 0) AS n_too_short,
           coalesce(s.n_events, 0) AS n_events, coalesce(s.n_copies, 0) AS n_copies,
           coalesce(f.n_fetches, 0) AS n_fetches, coalesce(f.n_fetched_ok, 0) AS n_fetched_ok,
           coalesce(f.n_not_modified, 0) AS n_not_modified,
           coalesce(f.n_failures, 0) AS n_failures,
           s.first_published_at, s.last_published_at, f.last_fetched_at
    FROM fetched f FULL OUTER JOIN stored s ON f.site IS NOT DISTINCT FROM s.site
    ORDER BY n_articles DESC, n_fetches DESC, site
    """

VIEWS_V2: tuple[str, ...] = (
    # A copy: articles with near-identical text (syndication, reposts), inside one event.
    """
    CREATE OR REPLACE VIEW copies AS
    SELECT ea.copy_id,
           min(ea.event_id) AS event_id,
           count(*) AS n_articles,
           count(DISTINCT a.site) AS n_sites,
           arg_min(a.article_id, (coalesce(a.published_at, a.first_seen_at), a.article_id))
               AS first_article_id,
           arg_min(a.url, (coalesce(a.published_at, a.first_seen_at), a.article_id))
               AS first_url,
           arg_min(a.title, (coalesce(a.published_at, a.first_seen_at), a.article_id))
               AS title,
           min(a.published_at) AS first_published_at,
           max(a.published_at) AS last_published_at,
           min(ea.first_seen_at) AS first_seen_at,
           max(ea.first_seen_at) AS last_seen_at
    FROM event_articles ea JOIN articles a USING (article_id)
    GROUP BY ea.copy_id
    """,
    # Events, most recently seen first, with their canonical article and number of copies.
    """
    CREATE OR REPLACE VIEW latest_events AS
    WITH n AS (
        SELECT event_id, count(DISTINCT copy_id) AS n_copies
        FROM event_articles GROUP BY event_id
    )
    SELECT e.event_id, e.title, e.event_date, e.place, e.n_articles, e.n_sources,
           coalesce(n.n_copies, 0) AS n_copies,
           e.first_published_at, e.last_published_at, e.first_seen_at, e.last_seen_at,
           e.canonical_article_id, a.url AS canonical_url, a.site AS canonical_site,
           e.canonical_rule, e.last_run_id
    FROM events e
    LEFT JOIN n USING (event_id)
    LEFT JOIN articles a ON a.article_id = e.canonical_article_id
    ORDER BY e.last_seen_at DESC, e.last_published_at DESC NULLS LAST, e.event_id
    """,
    # An event's articles in time order (GDELT's Mentions of one event), with the evidence
    # that placed each one: the rule, its score, and the member it matched.
    """
    CREATE OR REPLACE VIEW event_timeline AS
    SELECT ea.event_id,
           row_number() OVER (
               PARTITION BY ea.event_id
               ORDER BY coalesce(a.published_at, a.first_seen_at), a.first_seen_at, a.article_id
           ) AS position,
           coalesce(a.published_at, a.first_seen_at) AS reported_at,  -- published, else first seen
           a.published_at, a.first_seen_at,
           a.article_id, a.title, a.url, a.site, a.sitename, a.source, a.author,
           ea.copy_id, ea.rule, ea.similarity, ea.matched_article_id,
           coalesce(ea.article_id = e.canonical_article_id, false) AS is_canonical,
           ea.run_id
    FROM event_articles ea
    JOIN articles a USING (article_id)
    LEFT JOIN events e ON e.event_id = ea.event_id
    """,
    # Every event id ever handed out, live or merged away, and the id it lives on as.
    """
    CREATE OR REPLACE VIEW event_ids AS
    SELECT event_id AS any_event_id, event_id, false AS is_alias FROM events
    UNION ALL
    SELECT alias_id, event_id, true FROM event_aliases
    WHERE alias_id NOT IN (SELECT event_id FROM events)
    """,
    # An event's members looked up by any id it has had (aliases resolved).
    """
    CREATE OR REPLACE VIEW event_members AS
    SELECT i.any_event_id, i.is_alias, t.*
    FROM event_ids i JOIN event_timeline t ON t.event_id = i.event_id
    """,
    # One row per URL that failed in a run, at fetch or (fetched fine) at extraction.
    f"""
    CREATE OR REPLACE VIEW failures AS
    SELECT run_id, url, site, source,
           CASE WHEN status NOT IN {_NOT_FAILED} THEN 'fetch' ELSE 'extract' END AS stage,
           CASE WHEN status NOT IN {_NOT_FAILED} THEN status ELSE extract_status END AS reason,
           http_status,
           CASE WHEN status NOT IN {_NOT_FAILED} THEN detail ELSE extract_detail END AS detail,
           fetched_at
    FROM fetches
    WHERE status NOT IN {_NOT_FAILED}
       OR (status = 'ok' AND extract_status IS NOT NULL
           AND extract_status NOT IN ('ok', 'too_short'))
    """,
    """
    CREATE OR REPLACE VIEW failures_by_reason AS
    SELECT f.run_id, r.started_at AS run_started_at, f.stage, f.reason,
           coalesce(f.site, '(none)') AS domain, count(*) AS n_failures,
           min(f.url) AS example_url
    FROM failures f LEFT JOIN runs r USING (run_id)
    GROUP BY ALL
    ORDER BY run_started_at DESC NULLS LAST, n_failures DESC, f.reason, domain
    """,
    # Per site (domain): what was fetched, what failed, what it contributed.
    f"""
    CREATE OR REPLACE VIEW source_stats AS
    WITH fetched AS ({_FETCHED_BY_SITE}),
    stored AS (
        SELECT a.site, count(*) AS n_articles,
               count(*) FILTER (WHERE a.status = 'too_short') AS n_too_short,
               count(DISTINCT ea.event_id) AS n_events,
               count(DISTINCT ea.copy_id) AS n_copies,
               min(a.published_at) AS first_published_at,
               max(a.published_at) AS last_published_at
        FROM articles a LEFT JOIN event_articles ea USING (article_id)
        GROUP BY a.site
    )
{_SITE_STATS}""",
)

# event_timeline of VIEWS_V2 with the article's date_source beside its published_at.
EVENT_TIMELINE_V3 = """
    CREATE OR REPLACE VIEW event_timeline AS
    SELECT ea.event_id,
           row_number() OVER (
               PARTITION BY ea.event_id
               ORDER BY coalesce(a.published_at, a.first_seen_at), a.first_seen_at, a.article_id
           ) AS position,
           coalesce(a.published_at, a.first_seen_at) AS reported_at,  -- published, else first seen
           a.published_at, a.date_source, a.first_seen_at,
           a.article_id, a.title, a.url, a.site, a.sitename, a.source, a.author,
           ea.copy_id, ea.rule, ea.similarity, ea.matched_article_id,
           coalesce(ea.article_id = e.canonical_article_id, false) AS is_canonical,
           ea.run_id
    FROM event_articles ea
    JOIN articles a USING (article_id)
    LEFT JOIN events e ON e.event_id = ea.event_id
    """

# Issue #21: "copies" counted three things (the run summary: new articles in a group of two or
# more; latest_events.n_copies: distinct copy groups; source_stats.n_copies: the same per site).
# Now every n_copies counts copies, articles in a copy group of two or more, as the run summary
# does; an event's distinct texts are latest_events.n_texts.
_COPY_SIZES = "SELECT copy_id, count(*) AS n FROM event_articles GROUP BY copy_id"

LATEST_EVENTS_V5 = f"""
    CREATE OR REPLACE VIEW latest_events AS
    WITH sizes AS ({_COPY_SIZES}),
    n AS (
        SELECT ea.event_id, count(*) FILTER (WHERE s.n > 1) AS n_copies,
               count(DISTINCT ea.copy_id) AS n_texts
        FROM event_articles ea LEFT JOIN sizes s USING (copy_id) GROUP BY ea.event_id
    )
    SELECT e.event_id, e.title, e.event_date, e.place, e.n_articles, e.n_sources,
           coalesce(n.n_copies, 0) AS n_copies, coalesce(n.n_texts, 0) AS n_texts,
           e.first_published_at, e.last_published_at, e.first_seen_at, e.last_seen_at,
           e.canonical_article_id, a.url AS canonical_url, a.site AS canonical_site,
           e.canonical_rule, e.last_run_id
    FROM events e
    LEFT JOIN n USING (event_id)
    LEFT JOIN articles a ON a.article_id = e.canonical_article_id
    ORDER BY e.last_seen_at DESC, e.last_published_at DESC NULLS LAST, e.event_id
    """

# source_stats of VIEWS_V2 with n_copies counting the site's articles that are copies.
SOURCE_STATS_V5 = f"""
    CREATE OR REPLACE VIEW source_stats AS
    WITH fetched AS ({_FETCHED_BY_SITE}),
    sizes AS ({_COPY_SIZES}),
    stored AS (
        SELECT a.site, count(*) AS n_articles,
               count(*) FILTER (WHERE a.status = 'too_short') AS n_too_short,
               count(DISTINCT ea.event_id) AS n_events,
               count(*) FILTER (WHERE s.n > 1) AS n_copies,
               min(a.published_at) AS first_published_at,
               max(a.published_at) AS last_published_at
        FROM articles a LEFT JOIN event_articles ea USING (article_id)
        LEFT JOIN sizes s ON s.copy_id = ea.copy_id
        GROUP BY a.site
    )
{_SITE_STATS}"""


def _ddl(version: int) -> tuple[str, ...]:
    """What migration `version` does to the tables' columns, from their one declaration
    (warehouse/tables.py): the tables it creates, then the columns it adds."""
    return (
        *(t.create_sql() for t in TABLES if t.since == version),
        *(sql for t in TABLES for sql in t.add_columns_sql(version)),
    )

# Each grouping state's event time from its article (migrations 4 and 6, for different rows).
_SET_EVENT_AT = f"""
            UPDATE dedupe_state SET event_at = (
                SELECT {EVENT_AT} FROM articles a WHERE a.article_id = dedupe_state.doc_id)"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _ddl(1)),
    Migration(
        2,
        "sites, extraction outcomes, stage ledger, views",
        (
            # fetches.site, articles.site, fetches.extract_status and extract_detail, and the
            # run ledger's per-stage half, run_stages.
            *_ddl(2),
            # The backfill of site for rows loaded before uses the same rule as the loader's
            # extract.urls.site_of (host, lower case, without a leading "www.").
            f"UPDATE fetches SET site = {_SITE_OF.format(col='url')} WHERE site IS NULL",
            f"UPDATE articles SET site = {_SITE_OF.format(col='url')} WHERE site IS NULL",
            *VIEWS_V2,
        ),
    ),
    Migration(
        3,
        "where each article's date came from",
        (
            # articles.date_source: NULL for articles loaded before (the page is not kept, so
            # there is nothing to backfill from).
            *_ddl(3),
            # event_members selects event_timeline.* and so gains the column too.
            EVENT_TIMELINE_V3,
        ),
    ),
    Migration(
        4,
        "lake: published runs, grouping state by event time",
        (
            # published, maintenance and dedupe_state.event_at (warehouse/tables.py says why).
            *_ddl(4),
            _SET_EVENT_AT + """
            WHERE event_at IS NULL
            """,
        ),
    ),
    Migration(
        5,
        "n_copies counts copies everywhere; latest_events.n_texts",
        (
            LATEST_EVENTS_V5,
            SOURCE_STATS_V5,
        ),
    ),
    Migration(
        6,
        "open window: a guessed date is not an event time",
        (
            # Version 4 took a guessed publication date as the event time (see EVENT_AT).
            _SET_EVENT_AT + f"""
            WHERE doc_id IN (
                SELECT article_id FROM articles WHERE date_source = '{DateSource.TEXT.value}')
            """,
        ),
    ),
    Migration(
        7,
        "grouping state: the people a document names with an age",
        # dedupe_state.people, NULL for the states written before: their documents are read
        # as naming nobody (the payload has no people either), until a run rewrites them.
        _ddl(7),
    ),
)

CURRENT_VERSION = MIGRATIONS[-1].version


def migrate(
    con: duckdb.DuckDBPyConnection, migrations: tuple[Migration, ...] = MIGRATIONS
) -> int:
    """Apply every migration newer than the database's version, each in its own transaction
    (a migration killed halfway leaves nothing behind and runs again next time). Returns the
    version the database is at afterwards. `migrations` is for tests that build old versions."""
    con.execute(SCHEMA_VERSION.create_sql())
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    current = int(row[0]) if row else 0
    for migration in migrations:
        if migration.version <= current:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in migration.statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO schema_version (version, name, applied_at)"
                " VALUES (?, ?, now()::TIMESTAMP)",
                [migration.version, migration.name],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        current = migration.version
    return current
