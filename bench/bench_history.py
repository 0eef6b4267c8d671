"""A year of hourly runs: one scheduled run of 1,000 new pages on warehouses with 10,000 to
1,000,000 articles of history; its wall time, peak memory and publishing time should not grow
with the history.

    .venv/bin/python -m bench.bench_history [--sizes 10000,100000,1000000] [--out FILE.json]

For each size H, first (timed, printed, not counted) the history is built the fastest honest
way, in bulk into a fresh warehouse:
- H stories from bench.pages (real texts; originals, copies and mixes of them), 2-5 KB of text
  each, dated at RATE articles per open window (10,000 per 30 days), the newest just before the
  run. Their articles, one fetch row, one url_state row and one `runs` row per 1,000 articles
  (an hourly run's worth) are loaded as a run leaves them.
- The open window (the newest 10,000 stories, every story of the 10,000 history) is grouped by
  dedupe.group for real and loaded with Warehouse.load_grouping, as the runs would have.
- Older stories are in closed events (three articles each) whose grouping state rows carry
  payloads of the window's real size, reused from the window: a run never reads them
  (Warehouse.dedupe_states reads the open groups only; tests/warehouse/test_open_state.py),
  so they only need to be there, at their size.
Why a fixed rate: what a run costs depends on how many articles are open (rate x open_days),
which is the same for every size here; only the history differs, which is what is measured.

Then the run: the next 1,000 stories (copies and mixes of texts the history reported: copies
and follow-ups; the texts reused, so near-duplicates of open and closed events) are served as
pages on 127.0.0.1, and `ingest` (what `newsdedup run` calls) runs once in a fresh process,
against a Prefect server started here outside the timing, as a scheduled deployment's runs do.
Measured: the process's wall time and peak memory (bench_e2e.run_measured: PSS over the
process tree), its stage seconds, what a reader in another process saw querying the published
warehouse every two seconds during the run (errors; answers holding part of a run), then
outside the run: a forced publish (what the run's publish does, one snapshot marker) timed on
its own, the lake's disk use against the bytes of the files its current snapshot reads, one
maintenance pass, and what the run added to Prefect's own database.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pyarrow as pa  # noqa: E402

from bench import pages  # noqa: E402
from bench.bench_e2e import GIB, PYTHON, config_text, run_measured  # noqa: E402

RATE = 10_000  # articles per open window
OPEN_DAYS = 30.0
RUN_PAGES = 1_000
CHUNK = 50_000  # rows per bulk commit while building
STEP = timedelta(days=OPEN_DAYS) / RATE
CLOSED_EVENT_SIZE = 3


def dated(stories: list[pages.Story], start: datetime) -> list[pages.Story]:
    return [dataclasses.replace(s, published=start + i * STEP) for i, s in enumerate(stories)]


def _url(s: pages.Story) -> str:
    return f"https://{pages.SITES[s.site].slug}.example/{s.path('news')}"


def _text(s: pages.Story) -> str:
    return "\n".join(s.paragraphs)


def _article_table(stories: list[pages.Story], offset: int) -> pa.Table:
    from extract.urls import url_id
    from warehouse import tables

    urls = [_url(s) for s in stories]
    texts = [_text(s) for s in stories]
    published = [s.published.replace(tzinfo=None) for s in stories]
    seen = [p + timedelta(minutes=30) for p in published]
    # Run ids as the flow makes them (start time, then a random part), one per 1,000 articles
    # (`offset` is a multiple of 1,000).
    runs = [f"{seen[i - i % 1000]:%Y%m%dT%H%M%SZ}-h{(offset + i) // 1000:07d}"
            for i in range(len(stories))]
    return tables.ARTICLES.batch({
        "article_id": [url_id(u) for u in urls], "url": urls, "canonical_url": urls,
        "source": [pages.SITES[s.site].slug for s in stories],
        "sitename": [pages.SITES[s.site].name for s in stories],
        "title": [s.title for s in stories], "author": [s.author for s in stories],
        "published_at": published, "language": ["en"] * len(stories), "text": texts,
        "n_words": [len(t.split()) for t in texts],
        "content_hash": [hashlib.sha256(t.encode()).hexdigest()[:16] for t in texts],
        "status": ["ok"] * len(stories), "detail": [""] * len(stories),
        "first_seen_at": seen, "first_run_id": runs,
        "site": [f"{pages.SITES[s.site].slug}.example" for s in stories],
        "date_source": [None] * len(stories),
    })


def build_history(path: Path, stories: list[pages.Story]) -> dict[str, Any]:
    """The history in bulk; returns its counts and building time."""
    import dedupe
    from dedupe.records import Document
    from warehouse.store import Warehouse

    t0 = time.perf_counter()
    n = len(stories)
    window = max(0, n - RATE)
    with Warehouse.open(path, publish=False) as wh:
        con = wh.con
        for start in range(0, n, CHUNK):
            table = _article_table(stories[start:start + CHUNK], start)
            with wh.atomic():
                con.register("b", table)
                con.execute("INSERT INTO articles BY NAME SELECT * FROM b")
                con.execute(
                    """
                    INSERT INTO fetches BY NAME SELECT first_run_id AS run_id, url,
                        url AS final_url, source, 'ok' AS status, 200 AS http_status,
                        'text/html; charset=utf-8' AS content_type, 60000 AS n_bytes,
                        0.05 AS elapsed_s, 1 AS attempt, first_seen_at AS fetched_at,
                        '"' || content_hash || '"' AS etag, '' AS detail, site,
                        'ok' AS extract_status
                    FROM b
                    """
                )
                con.execute(
                    """
                    INSERT INTO url_state BY NAME SELECT url, '"' || content_hash || '"' AS etag,
                        'ok' AS last_status, first_seen_at AS last_fetched_at, article_id
                    FROM b
                    """
                )
                con.unregister("b")
        with wh.atomic():
            con.execute(
                """
                INSERT INTO runs (run_id, started_at, finished_at, status, n_fetched,
                                  n_articles_new)
                SELECT first_run_id, min(first_seen_at), max(first_seen_at), 'completed',
                       count(*), count(*)
                FROM articles GROUP BY first_run_id
                """
            )
        loaded = time.perf_counter()
        # The open window, grouped for real.
        docs = [
            Document(doc_id=row[0], text=row[1], title=row[2], url=row[3], source=row[4],
                     published_at=row[5].replace(tzinfo=UTC))
            for row in con.execute(
                "SELECT article_id, text, title, url, sitename, published_at FROM articles"
                " WHERE published_at >= ? ORDER BY article_id",
                [stories[window].published.replace(tzinfo=None)],
            ).fetchall()
        ]
        grouping = dedupe.group(docs, [])
        grouped = time.perf_counter()
        wh.load_grouping(f"{stories[-1].published:%Y%m%dT%H%M%SZ}-window", grouping,
                         stories[-1].published)
        payloads = [s.payload for s in grouping.states[:1000]]
        # Closed events: three articles each, state rows at the window's payload sizes.
        ids = [r[0] for r in con.execute(
            "SELECT article_id FROM articles WHERE published_at < ? ORDER BY published_at",
            [stories[window].published.replace(tzinfo=None)],
        ).fetchall()]
        for start in range(0, len(ids), CHUNK):
            part = ids[start:start + CHUNK]
            ev = [f"closed-{(start + i) // CLOSED_EVENT_SIZE:07d}" for i in range(len(part))]
            cp = [f"closedcopy-{(start + i) // CLOSED_EVENT_SIZE:07d}" for i in range(len(part))]
            table = pa.table({
                "doc_id": part, "event_id": ev, "copy_id": cp,
                "payload": pa.array([payloads[i % len(payloads)] for i in range(len(part))],
                                    pa.binary()),
            })
            with wh.atomic():
                con.register("g", table)
                con.execute(
                    """
                    INSERT INTO dedupe_state BY NAME
                    SELECT g.*, a.first_seen_at AS updated_at, a.published_at AS event_at
                    FROM g JOIN articles a ON a.article_id = g.doc_id
                    """
                )
                con.execute(
                    """
                    INSERT INTO event_articles BY NAME
                    SELECT g.doc_id AS article_id, g.event_id, g.copy_id,
                           'new_event' AS rule, 1.0 AS similarity,
                           a.first_seen_at, a.first_run_id AS run_id
                    FROM g JOIN articles a ON a.article_id = g.doc_id
                    """
                )
                con.execute(
                    """
                    INSERT INTO events BY NAME
                    SELECT g.event_id, arg_min(a.title, a.published_at) AS title,
                           min(g.doc_id) AS canonical_article_id, 'earliest' AS canonical_rule,
                           min(a.published_at) AS first_published_at,
                           max(a.published_at) AS last_published_at,
                           count(*) AS n_articles, count(DISTINCT a.site) AS n_sources,
                           min(a.first_seen_at) AS first_seen_at,
                           max(a.first_seen_at) AS last_seen_at,
                           max(a.first_run_id) AS last_run_id
                    FROM g JOIN articles a ON a.article_id = g.doc_id GROUP BY g.event_id
                    """
                )
                con.unregister("g")
        wh.publish(force=True)
        # A lake that has been maintained daily since its first run holds compacted files and
        # a maintenance row from today: the measured run is an ordinary hourly one. (The first
        # compaction of a bulk-built lake rewrites everything; a real lake never needs that.)
        compact = wh.maintain(datetime.now(UTC), keep_days=7)
        wh.publish(force=True)
    return {"articles": n, "window_grouped": len(docs), "load_s": round(loaded - t0, 1),
            "group_window_s": round(grouped - loaded, 1), "compact_s": compact["elapsed_s"],
            "build_s": round(time.perf_counter() - t0, 1)}


def disk(path: Path) -> dict[str, int]:
    """The lake's bytes on disk, and the bytes of the data files its current snapshot reads."""
    from warehouse import lake

    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    con = lake.connect(path, read_only=True)
    try:
        row = con.execute(
            "SELECT sum(file_size_bytes) + coalesce(sum(delete_file_size_bytes), 0)"
            f" FROM ducklake_table_info('{lake.ALIAS}')"
        ).fetchone()
    finally:
        con.close()
    return {"disk_bytes": total, "live_bytes": int(row[0]) if row and row[0] else 0}


def prefect_counts(home: Path) -> dict[str, int]:
    """Rows of Prefect's own database (flow runs, task runs, logs, artifacts, events)."""
    db = home / "prefect.db"
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out = {"db_bytes": db.stat().st_size + sum(
            f.stat().st_size for f in home.glob("prefect.db-*") if f.is_file())}
        for table in ("flow_run", "task_run", "log", "artifact", "events", "event_resources",
                      "flow_run_state", "task_run_state"):
            try:
                out[table] = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            except sqlite3.Error:
                pass
        return out
    finally:
        con.close()


# A reader in another process, querying the published warehouse in a loop while the run loads:
# every answer must come from whole runs (no article of a run that is not completed).
READER = """
import json, sys, time
from pathlib import Path
from warehouse.queries import run_query
path, stop, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
SQL = ("SELECT (SELECT count(*) FROM articles WHERE first_run_id NOT IN"
       " (SELECT run_id FROM runs WHERE status = 'completed')),"
       " (SELECT count(*) FROM event_articles ea ANTI JOIN articles a USING (article_id)),"
       " (SELECT count(*) FROM articles)")
reads, errors, half, sizes = 0, [], 0, set()
while not stop.exists():
    try:
        unfinished, orphans, n = run_query(path, SQL).rows[0]
        reads += 1
        half += int(unfinished > 0 or orphans > 0)
        sizes.add(n)
    except Exception as exc:
        errors.append(repr(exc)[:300])
    time.sleep(2.0)  # each read opens the lake afresh (~1 s of CPU loading the extensions)
out.write_text(json.dumps({"reads": reads, "errors": errors, "half_runs": half,
                           "articles_seen": sorted(sizes)}))
"""


def bench_size(h: int, work: Path, texts: list[pages.Text], api: str, home: Path) -> dict:
    from warehouse.store import Warehouse

    # The history ends where the measured run begins: now (the run's clock and its run id).
    start = datetime.now(UTC) - (h + RUN_PAGES) * STEP
    stories = dated(pages.make_stories(texts, h + RUN_PAGES), start)
    path = work / f"history{h}.lake"
    print(f"history {h:,}: building...", flush=True)
    built = build_history(path, stories[:h])
    before = disk(path)
    print(f"  built in {built['build_s']} s (not counted): {built}, "
          f"{before['disk_bytes'] / 1e6:,.0f} MB on disk", flush=True)
    site_dir = work / f"site{h}"
    with pages.serve(site_dir) as base_url:
        site_dir.mkdir(parents=True, exist_ok=True)
        site = pages.build(site_dir, RUN_PAGES, base_url, stories=stories[h:])
        config = work / f"run{h}.toml"
        config.write_text(config_text(path, site.sources), encoding="utf-8")
        child_out = work / f"run{h}.json"
        prefect_before = prefect_counts(home)
        stop, reader_out = work / f"stop{h}", work / f"reader{h}.json"
        reader = subprocess.Popen([PYTHON, "-c", READER, str(path), str(stop), str(reader_out)],
                                  cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        measured = run_measured(
            [PYTHON, "-m", "bench.bench_e2e", "--child", str(config), str(child_out)],
            work / f"run{h}.log", {"PREFECT_API_URL": api},
        )
        stop.touch()
        reader.wait(timeout=120)
        if measured.returncode != 0:
            raise RuntimeError(f"the run on {h:,} failed:\n" + "\n".join(measured.log_tail))
    prefect_after = prefect_counts(home)
    flow = json.loads(child_out.read_text(encoding="utf-8"))
    with Warehouse.open(path, publish=False) as wh:
        t = time.perf_counter()
        wh.publish(force=True)
        publish_s = time.perf_counter() - t
    after = disk(path)
    with Warehouse.open(path, publish=False) as wh:
        maintenance = wh.maintain(datetime.now(UTC), keep_days=7)
    row = {
        "history_articles": h,
        "run_wall_s": round(measured.wall_s, 2),
        # CPU seconds of the run's process tree: steadier than wall time on a shared VM.
        "run_cpu_s": round(measured.cpu_s, 1),
        "peak_rss_gib": round(measured.peak_rss_bytes / GIB, 3),
        "publish_s": round(publish_s, 3),
        "stage_seconds": flow.get("stage_seconds"),
        "counts": flow.get("counts"),
        "disk_bytes": after["disk_bytes"], "live_bytes": after["live_bytes"],
        "disk_over_live": round(after["disk_bytes"] / max(1, after["live_bytes"]), 3),
        "maintenance": maintenance,
        "prefect_db_added": {k: prefect_after.get(k, 0) - prefect_before.get(k, 0)
                             for k in prefect_after},
        "build": built,
        "peak_source": measured.peak_source,
        "peak_parts_mib": measured.peak_parts_mib,
        "reader": json.loads(reader_out.read_text(encoding="utf-8")),
    }
    print(f"history {h:>9,}: run {row['run_wall_s']:.1f} s ({row['run_cpu_s']:.0f} s CPU),"
          f" peak {row['peak_rss_gib']:.2f} GiB,"
          f" publish {row['publish_s']:.3f} s, stages {row['stage_seconds']},"
          f" disk {after['disk_bytes'] / 1e6:,.0f} MB = {row['disk_over_live']:.2f}x the live"
          f" data; maintenance {maintenance['elapsed_s']:.1f} s, files"
          f" {maintenance['files_before']} -> {maintenance['files_after']};"
          f" Prefect db +{row['prefect_db_added']}; a reader in another process during the"
          f" run: {row['reader']['reads']} reads, {len(row['reader']['errors'])} errors,"
          f" {row['reader']['half_runs']} with half a run", flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",") if x]
    texts = pages.load_texts()
    work = Path(tempfile.mkdtemp(prefix="bench-history-"))
    from flows.server import running_server

    rows = []
    try:
        home = work / "prefect-home"
        with running_server(home=home, log_path=work / "prefect-server.log") as api:
            for h in sizes:
                rows.append(bench_size(h, work, texts, api, home))
                if args.out:  # after each size: a long run that fails late keeps the rest
                    write(args.out, {"history": rows})
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    base = rows[0] if rows else None
    result: dict[str, Any] = {"history": rows}
    if base and len(rows) > 1:
        last = rows[-1]
        result["checks"] = {
            "sizes": [base["history_articles"], last["history_articles"]],
            "wall_ratio": round(last["run_wall_s"] / base["run_wall_s"], 3),
            "cpu_ratio": round(last["run_cpu_s"] / base["run_cpu_s"], 3),
            "memory_ratio": round(last["peak_rss_gib"] / base["peak_rss_gib"], 3),
            "publish_s": last["publish_s"], "disk_over_live": last["disk_over_live"],
        }
        def history_part(row: dict[str, Any]) -> float:
            # The stages that read or write the warehouse (extraction is the same work at
            # every size, and the share of the noise of a shared VM).
            st = row["stage_seconds"] or {}
            return sum(st.get(k, 0.0) for k in ("discover", "dedupe", "load"))

        result["checks"]["warehouse_stages_ratio"] = round(
            history_part(last) / max(1e-9, history_part(base)), 3)
        print(f"largest over smallest history: wall {result['checks']['wall_ratio']}x"
              f" (CPU {result['checks']['cpu_ratio']}x),"
              f" peak memory {result['checks']['memory_ratio']}x (targets <= 1.3x); discover +"
              f" dedupe + load {result['checks']['warehouse_stages_ratio']}x;"
              f" publish {last['publish_s']} s (<= 2 s), disk {last['disk_over_live']}x the"
              " live data (<= 1.2x)")
    if args.out:
        write(args.out, result)
    return 0


def write(out: Path, result: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
