"""Loading 100,000 articles: the warehouse's bulk path against row-by-row INSERTs.

    .venv/bin/python bench/bench_load.py [--n 100000] [--subset 5000] [--out FILE.json]

ours: `Warehouse.load_pages` on N synthetic fetched pages and their articles (one transaction:
fetches, url_state and articles written from Arrow tables, with the batch deduplicated first).
Best of three runs (fresh warehouses).
reference: the same rows written one at a time with prepared INSERT ... ON CONFLICT statements
(`executemany`, the fastest row-by-row form DuckDB's Python client offers), in one transaction,
into an identical fresh warehouse. Row-by-row is far too slow to run on all N, so it is timed on
`--subset` articles and extrapolated linearly to N; it is also timed on half the subset, and the
printed linearity (time per row at the subset / at half of it) shows whether the extrapolation
is fair (1.0 = linear; above 1 means row-by-row slows down as the table grows, so the linear
extrapolation flatters the reference).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from extract.records import Article, FetchedPage, Reason  # noqa: E402
from warehouse.schema import migrate  # noqa: E402
from warehouse.store import Warehouse  # noqa: E402

T0 = datetime(2025, 1, 7, 9, 0, tzinfo=UTC)
SITES = tuple(f"outlet{i}.example" for i in range(50))
# A short vocabulary; 180 words a text is about 1.3 kB, the size of a short news item.
WORDS = tuple(f"w{i}" for i in range(5000))


def synthetic(n: int) -> tuple[list[FetchedPage], list[Article]]:
    pages: list[FetchedPage] = []
    articles: list[Article] = []
    for i in range(n):
        site = SITES[i % len(SITES)]
        url = f"https://{site}/news/{i}"
        when = T0 + timedelta(seconds=37 * i)
        text = " ".join(WORDS[(i * 31 + j * 7) % len(WORDS)] for j in range(180))
        pages.append(FetchedPage(url=url, final_url=url, source=f"src{i % 7}", status=Reason.OK,
                                 fetched_at=when, http_status=200, content_type="text/html",
                                 etag=f'"{i:x}"', n_bytes=len(text) * 3, elapsed_s=0.2))
        articles.append(Article(article_id=f"{i:016x}", url=url, canonical_url=url,
                                source=f"src{i % 7}", status=Reason.OK, text=text,
                                content_hash=f"{i * 2654435761 % 2**64:016x}",
                                title=f"Story {i} from {site}", author="A. Writer",
                                published_at=when, sitename=site, language="en"))
    return pages, articles


Timing = tuple[float, float]  # (wall seconds, CPU seconds of this process, all threads)


def bulk_seconds(directory: Path, pages: list[FetchedPage], articles: list[Article]) -> Timing:
    directory.mkdir(parents=True, exist_ok=True)
    with Warehouse.open(directory / "bulk.duckdb", publish=False) as wh:
        wh.start_run("bench", T0, None)
        start, cpu = time.perf_counter(), time.process_time()
        new = wh.load_pages("bench", pages, articles, T0)
        elapsed = (time.perf_counter() - start, time.process_time() - cpu)
        assert len(new) == len(articles)
        n = wh.con.execute("SELECT count(*) FROM articles").fetchone()
        assert n == (len(articles),), n
    return elapsed


def _naive(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC).replace(tzinfo=None) if value is not None else None


def row_by_row_seconds(
    path: Path, pages: list[FetchedPage], articles: list[Article], idempotent: bool = True
) -> Timing:
    """The same three tables, one prepared INSERT per row. `idempotent` keeps the bulk path's
    semantics (ON CONFLICT on the natural keys); without it the INSERTs are plain, which is
    faster per row (DuckDB's conflict check costs about 3x on these wide tables) but would
    duplicate or fail on a rerun: a weaker baseline, measured to show the margin holds anyway."""
    con = duckdb.connect(str(path))
    migrate(con)
    if idempotent:
        # The migrations create the lake's tables, which have no key constraints (the loads
        # keep the keys unique); a row-by-row upsert needs them, as the old DuckDB file had.
        con.execute("CREATE UNIQUE INDEX url_state_key ON url_state (url)")
        con.execute("CREATE UNIQUE INDEX articles_key ON articles (article_id)")
        con.execute("CREATE UNIQUE INDEX fetches_key ON fetches (run_id, url)")
    fetch_rows: list[tuple[Any, ...]] = []
    state_rows: list[tuple[Any, ...]] = []
    article_rows: list[tuple[Any, ...]] = []
    for p, a in zip(pages, articles, strict=True):
        site = p.url.split("/")[2]
        fetch_rows.append((
            "bench", p.url, p.final_url, p.source, str(p.status), p.http_status, p.content_type,
            p.n_bytes, p.elapsed_s, p.attempt, _naive(p.fetched_at), None, p.etag,
            p.last_modified, p.detail, site, str(a.status), a.detail,
        ))
        state_rows.append((p.url, p.etag, p.last_modified, None, str(p.status),
                           _naive(p.fetched_at), a.article_id))
        article_rows.append((
            a.article_id, a.url, a.canonical_url, a.source, a.sitename, a.title, a.author,
            _naive(a.published_at), a.language, a.text, len(a.text.split()), a.content_hash,
            str(a.status), a.detail, _naive(T0), "bench", site,
        ))
    or_replace = "OR REPLACE " if idempotent else ""
    on_conflict_update = (
        " ON CONFLICT (url) DO UPDATE SET"
        " etag = excluded.etag, last_modified = excluded.last_modified,"
        " retry_after = excluded.retry_after, last_status = excluded.last_status,"
        " last_fetched_at = excluded.last_fetched_at, article_id = excluded.article_id"
    ) if idempotent else ""
    on_conflict_nothing = " ON CONFLICT (article_id) DO NOTHING" if idempotent else ""
    start, cpu = time.perf_counter(), time.process_time()
    con.execute("BEGIN TRANSACTION")
    con.executemany(
        f"INSERT {or_replace}INTO fetches (run_id, url, final_url, source, status, http_status,"
        " content_type, n_bytes, elapsed_s, attempt, fetched_at, retry_after, etag,"
        " last_modified, detail, site, extract_status, extract_detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        fetch_rows,
    )
    con.executemany(
        "INSERT INTO url_state VALUES (?, ?, ?, ?, ?, ?, ?)" + on_conflict_update, state_rows
    )
    con.executemany(
        "INSERT INTO articles (article_id, url, canonical_url, source, sitename, title, author,"
        " published_at, language, text, n_words, content_hash, status, detail, first_seen_at,"
        " first_run_id, site) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        + on_conflict_nothing,
        article_rows,
    )
    con.execute("COMMIT")
    elapsed = (time.perf_counter() - start, time.process_time() - cpu)
    assert con.execute("SELECT count(*) FROM articles").fetchone() == (len(articles),)
    con.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--subset", type=int, default=5_000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "load.json")
    args = parser.parse_args(argv)

    pages, articles = synthetic(args.n)
    scale = args.n / args.subset
    half = args.subset // 2
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        directory = Path(tmp)
        # Best of three fresh loads: other processes on the machine only ever add time.
        runs = []
        for i in range(3):
            runs.append(bulk_seconds(directory / f"bulk{i}", pages, articles))
            print(f"  bulk: {runs[-1][0]:.2f} s wall, {runs[-1][1]:.2f} s CPU", flush=True)
        ours = min(runs)
        ref_half = row_by_row_seconds(directory / "rows_half.duckdb", pages[:half], articles[:half])
        print(f"  row-by-row, {half:,} articles: {ref_half[0]:.2f} s", flush=True)
        ref = row_by_row_seconds(
            directory / "rows.duckdb", pages[: args.subset], articles[: args.subset]
        )
        print(f"  row-by-row, {args.subset:,} articles: {ref[0]:.2f} s wall, {ref[1]:.2f} s CPU",
              flush=True)
        plain = row_by_row_seconds(
            directory / "plain.duckdb", pages[: args.subset], articles[: args.subset],
            idempotent=False,
        )
        print(f"  plain row-by-row (no ON CONFLICT), {args.subset:,} articles:"
              f" {plain[0]:.2f} s wall, {plain[1]:.2f} s CPU", flush=True)
    linearity = (ref[0] / args.subset) / (ref_half[0] / half)
    # reference = the subset's time x scale: linear extrapolation, stated in the output
    lines = [
        ("wall", ours[0], ref[0] * scale, "row-by-row INSERT ... ON CONFLICT (same semantics)"),
        ("cpu", ours[1], ref[1] * scale, "the same, CPU time (steadier on a shared machine)"),
        ("wall", ours[0], plain[0] * scale, "plain INSERTs, no ON CONFLICT (not idempotent)"),
        ("cpu", ours[1], plain[1] * scale, "the same, CPU time"),
    ]
    ratio = lines[0][2] / lines[0][1]
    result = {
        "benchmark": "load",
        "n_articles": args.n,
        "ours_s": round(ours[0], 3),
        "reference_s": round(lines[0][2], 3),
        "ratio": round(ratio, 1),
        "unit": "s",
        "lines": [
            {"clock": clock, "ours_s": round(o, 3), "reference_s": round(r, 3),
             "ratio": round(r / o, 1), "reference": what}
            for clock, o, r, what in lines
        ],
        "plain_reference_s": round(lines[2][2], 3),
        "plain_reference_ratio": round(lines[2][2] / lines[2][1], 1),
        "ours_runs_s": [[round(w, 3), round(c, 3)] for w, c in runs],
        "reference_measured_on": args.subset,
        "reference_measured_s": [round(x, 3) for x in ref],
        "reference_half_subset_s": [round(x, 3) for x in ref_half],
        "plain_reference_measured_s": [round(x, 3) for x in plain],
        "reference_extrapolation": f"linear, x{scale:g}",
        "reference_linearity": round(linearity, 3),
        "ours_rows_per_s": round(args.n / ours[0]),
        "reference_rows_per_s": round(args.subset / ref[0]),
        "duckdb": duckdb.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(f"load {args.n:,} synthetic articles (fetches + url_state + articles, one transaction)")
    print(f"references timed on {args.subset:,} articles and extrapolated linearly x{scale:g};"
          f" row-by-row time per row at {args.subset:,} vs {half:,}: {linearity:.2f}"
          " (above 1: the extrapolation flatters the reference)")
    print("ours, reference, ratio, unit")
    for clock, o, r, what in lines:
        print(f"{o:.3f}, {r:.3f}, {r / o:.1f}, s   ({clock}; reference: {what})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if ratio >= 50 else 1


if __name__ == "__main__":
    sys.exit(main())
