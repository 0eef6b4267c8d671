"""`python -m bench` (= `make bench`): every benchmark, one line per comparison, one JSON file.

    .venv/bin/python -m bench [--quick | --smoke] [--only NAME ...] [--sizes N,N,...] [--list]

Each benchmark is its own script, run here as a subprocess one after the other (never side by
side: they would share the two cores) with `--out FILE.json`; this module reads those files and
prints, per comparison: name, ours, the reference, the ratio, the unit. The ratio is ours over
the reference for throughputs and the reference over ours for times, so above 1 always means
ours is faster; for end to end it is the flow's throughput over extraction alone (1.0 would
mean fetching, grouping, loading and Prefect cost nothing).

Writes bench/results/bench.json (git-ignored; --results DIR elsewhere); a full run (no --quick,
--smoke or --only) also writes docs/bench/latest.json, the committed copy, stamped with the
commit it ran on. --smoke runs each benchmark at sizes so small that its figures mean nothing:
seconds each, to check that every script still runs and reports (tests/test_readme.py runs it
for `make bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
LATEST = REPO / "docs" / "bench" / "latest.json"
PYTHON = sys.executable

Comparison = dict[str, Any]


@dataclass(frozen=True)
class Benchmark:
    name: str
    script: str  # path under the repo
    full: tuple[str, ...]  # arguments for `make bench`
    quick: tuple[str, ...]  # arguments for --quick: minutes, not tens of minutes
    lines: Callable[[dict[str, Any]], list[Comparison]]
    smoke: tuple[str, ...] = ()  # arguments for --smoke: seconds; the figures mean nothing


def _cmp(name: str, ours: float | None, ref: float | None, ratio: float | None, unit: str,
         ref_label: str,
         **extra: Any) -> Comparison:
    return {"name": name, "ours": ours, "reference": ref, "ratio": ratio, "unit": unit,
            "reference_is": ref_label, **extra}


def _extract_lines(r: dict[str, Any]) -> list[Comparison]:
    return [_cmp(f"extraction ({r['pages']} pages)", r["ours"], r["reference"], r["ratio"],
                 r["unit"], "single-process trafilatura loop, same pages",
                 same_rows=r.get("same_rows"))]


def _cluster_lines(r: dict[str, Any]) -> list[Comparison]:
    """bench_cluster's JSON: one comparison at top level, or a list of them per size."""
    rows = r.get("sizes") or r.get("results") or [r]
    out = []
    for row in rows:
        n = row.get("n_docs") or row.get("docs") or row.get("n")
        label = row.get("reference_is") or "plain datasketch script, same documents"
        out.append(_cmp(f"grouping ({n:,} docs)" if isinstance(n, int) else "grouping",
                        row["ours"], row["reference"], row["ratio"], row.get("unit", r.get("unit")),
                        label))
    return out


def _load_lines(r: dict[str, Any]) -> list[Comparison]:
    n = r["n_articles"]
    out = [_cmp(f"loading ({n:,} articles)", r["ours_s"], r["reference_s"], r["ratio"], "s",
                f"row-by-row INSERT ... ON CONFLICT, timed on {r['reference_measured_on']:,} "
                f"and extrapolated {r['reference_extrapolation']}")]
    if "plain_reference_s" in r:
        out.append(_cmp(f"loading ({n:,} articles)", r["ours_s"], r["plain_reference_s"],
                        r["plain_reference_ratio"], "s",
                        "plain row-by-row INSERTs (not idempotent), same extrapolation"))
    return out


def _e2e_lines(r: dict[str, Any]) -> list[Comparison]:
    out = []
    for s in r["sizes"] + ([r["ephemeral"]] if r.get("ephemeral") else []):
        o = s["ours"]
        ref: dict[str, Any] = s.get("reference") or next(
            (x["reference"] for x in r["sizes"] if x["pages"] == s["pages"]), {})
        server = "" if s["prefect_api"] == "server" else ", Prefect temporary server"
        out.append(_cmp(
            f"end to end ({s['pages']:,} pages{server})", o["pages_per_s"],
            ref.get("pages_per_s"), s.get("ratio"), "pages/s",
            "newsdedup extract alone on the same page files",
            articles_per_hour=o["articles_per_hour"], peak_memory_gib=o["peak_memory_gib"],
            stage_seconds=o["stage_seconds"], prefect_overhead_s=o["prefect_overhead_s"],
            prefect_share=o["prefect_share"], wall_s=o["wall_s"]))
    return out


def _history_lines(r: dict[str, Any]) -> list[Comparison]:
    """One line per history size: the run's wall time against the smallest history's (above 1
    would mean the larger history's run is faster; the target is >= 1/1.3)."""
    rows = r["history"]
    base = rows[0]
    return [
        _cmp(f"run of 1,000 pages on {row['history_articles']:,} history", row["run_wall_s"],
             base["run_wall_s"], round(base["run_wall_s"] / row["run_wall_s"], 3), "s",
             f"the same run on {base['history_articles']:,} articles of history",
             peak_rss_gib=row["peak_rss_gib"], publish_s=row["publish_s"],
             disk_over_live=row.get("disk_over_live"))
        for row in rows
    ]


BENCHMARKS = (
    # Three runs of each side, best kept: on this shared VM one run varies by +-15%.
    Benchmark("extraction", "bench/bench_extract.py", ("--runs", "3"),
              ("--copies", "1", "--runs", "1"), _extract_lines,
              ("--copies", "1", "--runs", "1", "--max-pages", "10")),
    Benchmark("grouping", "bench/bench_cluster.py", (), ("--quick",), _cluster_lines,
              ("--n", "200", "--scale", "400")),
    Benchmark("loading", "bench/bench_load.py", (), ("--n", "20000", "--subset", "1000"),
              _load_lines, ("--n", "400", "--subset", "100")),
    # Three runs a side, alternating, fastest kept (the same VM noise; with two, the reference's
    # best moved 67-88 s between make bench runs on the same code); one in --quick.
    Benchmark("e2e", "bench/bench_e2e.py", ("--runs", "3"),
              ("--pages", "200", "1000", "--ephemeral-at", "0", "--runs", "1"), _e2e_lines,
              ("--pages", "20", "--ephemeral-at", "0", "--runs", "1")),
    # One scheduled run on growing histories (issue 19); --sizes overrides the sizes.
    Benchmark("history", "bench/bench_history.py", ("--sizes", "10000,50000,200000"),
              ("--sizes", "2000,10000"), _history_lines, ("--sizes", "200,400")),
)


def _fmt(value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, float | int):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def line(c: Comparison) -> str:
    return (f"{c['name']:<44} {_fmt(c['ours']):>10} {c['unit']:<8} vs {_fmt(c['reference']):>10}"
            f" {c['unit']:<8} ({c['reference_is']})  ratio {_fmt(c['ratio'])}")


def run_one(
    b: Benchmark, quick: bool, sizes: str | None = None, smoke: bool = False,
    results: Path = RESULTS,
) -> dict[str, Any]:
    script = REPO / b.script
    if not script.is_file():
        print(f"[{b.name}] skipped: {b.script} is not there", flush=True)
        return {"name": b.name, "status": f"skipped: {b.script} missing", "comparisons": []}
    out = results / f"{b.name}.json"
    out.unlink(missing_ok=True)
    args = list(b.smoke if smoke else b.quick if quick else b.full)
    if sizes and b.name == "history":
        args = ["--sizes", sizes]
    cmd = [PYTHON, str(script), *args, "--out", str(out)]
    print(f"[{b.name}] {' '.join([Path(PYTHON).name, b.script, *args])}", flush=True)
    started = time.perf_counter()
    load = os.getloadavg()[0]
    # The scripts print their own progress; it goes straight through, indented by nothing.
    proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    elapsed = time.perf_counter() - started
    entry: dict[str, Any] = {"name": b.name, "command": cmd[1:], "seconds": round(elapsed, 1),
                             "exit_code": proc.returncode, "load_1m_before": round(load, 2),
                             "load_1m_after": round(os.getloadavg()[0], 2)}
    if not out.is_file():
        entry.update(status=f"failed: exit {proc.returncode}, no {out.name}", comparisons=[])
        return entry
    raw = json.loads(out.read_text(encoding="utf-8"))
    entry["status"] = "ok" if proc.returncode == 0 else f"below its bar (exit {proc.returncode})"
    try:
        entry["comparisons"] = b.lines(raw)
    except (KeyError, TypeError) as exc:
        entry.update(status=f"unreadable {out.name}: {exc!r}", comparisons=[])
    entry["raw"] = raw
    return entry


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def e2e_report(raw: dict[str, Any]) -> list[str]:
    """The end-to-end details the one-line comparisons leave out, and the issue's targets."""
    out = []
    for s in raw["sizes"] + ([raw["ephemeral"]] if raw.get("ephemeral") else []):
        o = s["ours"]
        stages = o["stage_seconds"] or {}
        parts = o.get("prefect_parts_s") or {}
        out.append(
            f"  {s['pages']:,} pages ({s['prefect_api']} Prefect API): {o['wall_s']:.1f} s, "
            f"{o['articles_per_hour']:,} articles/hour, peak {o['peak_memory_gib']:.2f} GiB; "
            + ", ".join(f"{k} {v:.1f}" for k, v in stages.items() if k != "total")
            + f"; Prefect overhead {o['prefect_overhead_s']} s ({o['prefect_share']:.1%}: "
            + ", ".join(f"{k} {v}" for k, v in parts.items()) + ")")
        runs = s.get("runs") or []
        if len(runs) > 1 and "ratio" in runs[0]:
            out.append("    each run, flow s / extraction-only s (ratio): " + ", ".join(
                f"{r['flow_wall_s']:.1f} / {r['reference_wall_s']:.1f} ({r['ratio']:.3f})"
                for r in runs) + "; the fastest of each side is compared"
                + (f"; median pair {s['ratio_pairs_median']:.3f}"
                   if s.get("ratio_pairs_median") is not None else ""))
    t, c = raw["targets"], raw["checks"]
    verdict = {
        "end to end / extraction alone": (c["e2e_vs_extract"], f">= {t['e2e_vs_extract_min']}",
                                          c["e2e_vs_extract"] >= t["e2e_vs_extract_min"]),
        "Prefect share of the run": (c["prefect_share"], f"< {t['prefect_share_max']}",
                                     c["prefect_share"] < t["prefect_share_max"]),
        "peak memory, GiB": (c["peak_memory_gib"], f"< {t['peak_memory_max_gib']}",
                             c["peak_memory_gib"] < t["peak_memory_max_gib"]),
    }
    if c.get("e2e_vs_extract_pairs_median") is not None:
        median = c["e2e_vs_extract_pairs_median"]
        verdict["end to end / extraction alone, median run pair"] = (
            median, f">= {t['e2e_vs_extract_min']}", median >= t["e2e_vs_extract_min"])
    if "growth" in c:
        verdict[f"time growth for {c['growth_pages']:g}x pages"] = (
            c["growth"], f"<= {t['growth_1k_10k_max']}", c["growth"] <= t["growth_1k_10k_max"])
    for name, (value, bar, ok) in verdict.items():
        out.append(f"  target {name}: {value} ({bar}) {'met' if ok else 'MISSED'}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, seconds each: checks the scripts run, measures nothing")
    parser.add_argument("--results", type=Path, default=RESULTS, metavar="DIR",
                        help=f"where the JSON goes (default {RESULTS.relative_to(REPO)})")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=[b.name for b in BENCHMARKS],
                        help="run only these benchmarks")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--sizes", default=None, metavar="N,N,...",
                        help="history sizes for the history benchmark (e.g. 10000,100000)")
    args = parser.parse_args(argv)
    if args.list:
        for b in BENCHMARKS:
            print(f"{b.name:<12} {b.script}")
        return 0
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    args.results.mkdir(parents=True, exist_ok=True)
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    entries = [run_one(b, args.quick, args.sizes, args.smoke, args.results) for b in chosen]
    comparisons = [c for e in entries for c in e["comparisons"]]

    print()
    print(f"newsdedup benchmarks, commit {commit[:12]}{' (uncommitted changes)' if dirty else ''},"
          f" {len(os.sched_getaffinity(0))} cores, load {load_before[0]:.1f} at start,"
          f" {os.getloadavg()[0]:.1f} at end{', --quick' if args.quick else ''}"
          f"{', --smoke: the figures mean nothing' if args.smoke else ''}")
    for c in comparisons:
        print(line(c))
    for e in entries:
        if e["status"] != "ok":
            print(f"{e['name']}: {e['status']}")
        if e["name"] == "e2e" and e.get("raw"):
            print("end to end, details:")
            for text in e2e_report(e["raw"]):
                print(text)

    report = {
        "commit": commit,
        "uncommitted_changes": dirty,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "smoke": args.smoke,
        "only": args.only,
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_average_at_start": [round(x, 2) for x in load_before],
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "comparisons": comparisons,
        "benchmarks": entries,
    }
    history = next((e for e in entries if e["name"] == "history" and e.get("raw")), None)
    if history is not None:
        report["history"] = history["raw"]["history"]
    text = json.dumps(report, indent=2, default=str) + "\n"
    (args.results / "bench.json").write_text(text, encoding="utf-8")
    print(f"written {args.results / 'bench.json'}")
    if args.smoke:
        # A tiny run misses its bars by design; what counts is that each script reported.
        return 0 if all(e["comparisons"] for e in entries) else 1
    if not args.quick and not args.only:
        LATEST.parent.mkdir(parents=True, exist_ok=True)
        LATEST.write_text(text, encoding="utf-8")
        print(f"written {LATEST} (commit it)")
    return 0 if all(e["status"] == "ok" for e in entries) else 1


if __name__ == "__main__":
    sys.exit(main())
