"""End to end: the whole ingestion flow on N generated pages served from 127.0.0.1, against
`newsdedup extract` on the same page files.

    .venv/bin/python -m bench.bench_e2e [--pages 1000 10000] [--runs 3] [--out FILE.json]
                                        [--profile DIR]

For each N: bench.pages writes N article pages (real texts in six site templates) and a sitemap
or RSS feed per site into a temporary directory and serves it on 127.0.0.1 from a thread of
this process. Then, each in a fresh process so imports and start-up count as they do for a
user:
- ours: `ingest(config)` (what `newsdedup run` calls) with allow_private_networks, no per-host
  delay and 16 requests in flight per source; a fresh warehouse each time.
- reference: `newsdedup extract DIR --out FILE` on the same page files, already on disk: the
  extraction-only throughput, i.e. what the pipeline would cost if fetching, grouping, loading
  and Prefect were free.
The two sides alternate, `--runs` times each (flow, reference, flow, reference): this VM's speed
drifts by +-15% over minutes, so a single pair can land one side in a slow spell. The fastest
run of each side is compared, as timeit and the extraction benchmark do, and beside it the median
of the run pairs (each flow run against the reference run after it), the figure a typical run
gets; every run is in the JSON, and the checks on memory and Prefect's share take the worst
run. Each run starts on an idle machine (`settle`: a flow run's Prefect server stores its events
for seconds after it).

Measured: wall time of the process, CPU seconds of its whole tree, peak memory (the sum of PSS
over the process tree, polled every POLL_S seconds with psutil, so the forkserver, the
extraction workers and Prefect's temporary API server are all counted, and a page shared
between processes once), the flow's own time per stage (RunSummary.stage_seconds, when the
pipeline provides it) and Prefect's overhead: process wall minus the time inside the stages,
i.e. Prefect's imports, its ephemeral API server, flow and task-run bookkeeping.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script (bench/bench_e2e.py) as well as with -m
    sys.path.insert(0, str(REPO))
PYTHON = sys.executable
NEWSDEDUP = str(Path(PYTHON).parent / "newsdedup")
GIB = 1024**3
# Memory poll interval. Reading a process's PSS makes the kernel walk its page tables: 8 ms of
# CPU for a ~1 GiB flow process, and the poller took 3.1 CPU s over a 10,000-page run at 0.5 s
# (221 polls, ~14 ms each over the whole tree), on the same two cores as the run it measures.
# The poller charges the flow more than the reference (whose processes are small), so it reads
# once a second. What that can miss (memory_timeline_mib): since the page feed is bounded the
# flow holds steady during fetch and extraction (~0.5 GiB at 10,000 pages) and moves only
# while grouping forks its workers, by up to ~170 MiB in a second, around a 0.7 GiB peak.
POLL_S = 1.0
STAGES = ("discover", "fetch", "extract", "dedupe", "load")

# Requests in flight. One host serves every page here (127.0.0.1), so the per-host and overall
# limits are the same: 16, FetchPolicy's default overall concurrency. Eight sources fetch at once
# through the run's one Fetcher, so up to 16 requests are in flight against one server
# (bench.pages.serve), however many fetch threads wait.
CONCURRENCY = 16

TARGETS = {
    "e2e_vs_extract_min": 0.70,  # end to end >= 70% of extraction-only throughput at 10k
    "prefect_share_max": 0.10,  # Prefect's overhead < 10% of the run
    "growth_1k_10k_max": 11.0,  # 10k pages take <= 11x the time of 1k
    "peak_memory_max_gib": 2.0,  # at 10k
}


def config_text(warehouse: Path, sources: tuple[tuple[str, str, str], ...]) -> str:
    lines = [
        "[warehouse]",
        f"path = {json.dumps(str(warehouse))}",
        "",
        "[fetch]",
        "allow_private_networks = true   # the bench pages are served on 127.0.0.1",
        "per_host_delay_s = 0.0",
        f"per_host_concurrency = {CONCURRENCY}",
        f"concurrency = {CONCURRENCY}",
        "",
    ]
    for name, kind, url in sources:
        lines += ["[[sources]]", f'name = "{name}"', f'{kind} = "{url}"', ""]
    return "\n".join(lines)


# --- Measuring a process tree --------------------------------------------------------------


def _label(p: Any) -> str:
    """A short name for a process in the tree: what it is, not its full command line."""
    cmd = " ".join(p.cmdline())
    for key, label in (("forkserver", "forkserver or worker"), ("spawn_main", "worker"),
                       ("--child", "flow"), ("uvicorn", "prefect server"),
                       ("newsdedup extract", "newsdedup extract")):
        if key in cmd:
            return label
    return cmd[:60]


def _tree_sample(
    proc: Any, cpu: dict[int, float]
) -> tuple[int, list[tuple[str, int]]]:
    """PSS summed over the process tree and per process; records each process's CPU seconds
    so far in `cpu` (getrusage misses workers that the forkserver, not our child, reaps)."""
    import psutil

    total = 0
    parts: list[tuple[str, int]] = []
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0, parts
    for p in procs:
        try:
            with p.oneshot():
                # PSS, not RSS: a page shared by several processes (a fork's parent and child
                # before exec, the forkserver and its workers) is counted once in the sum. RSS
                # counted the 1 GiB flow process twice when it spawned the forkserver at the
                # start of extraction (2.01 GiB at 10,000 pages, against 1.5 GiB in fact).
                rss = p.memory_full_info().pss
                t = p.cpu_times()
                cpu[p.pid] = t.user + t.system
            total += rss
            parts.append((_label(p), rss))
        except psutil.Error:
            pass
    return total, parts


@dataclass
class Measured:
    wall_s: float
    cpu_s: float
    peak_rss_bytes: int
    returncode: int
    peak_source: str
    log_tail: list[str] = field(default_factory=list)
    # At the peak: seconds since start and PSS (MiB) per process; and one sample a second.
    peak_at_s: float | None = None
    peak_parts_mib: list[tuple[str, int]] = field(default_factory=list)
    timeline: list[tuple[float, int]] = field(default_factory=list)


def run_measured(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> Measured:
    """Run `cmd` to the end; wall, CPU of it and its children, peak PSS of its process tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    peak_at: float | None = None
    peak_parts: list[tuple[str, int]] = []
    timeline: list[tuple[float, int]] = []
    with open(log, "w", encoding="utf-8") as out:
        child = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                 env={**os.environ, **(env or {})})
        peak = 0
        source = "getrusage maxrss (largest single process)"
        tree_cpu: dict[int, float] = {}
        try:
            import psutil

            proc = psutil.Process(child.pid)
            source = f"psutil: sum of PSS over the process tree, polled every {POLL_S} s"
            stop = threading.Event()

            def poll() -> None:
                nonlocal peak, peak_at, peak_parts
                last = -1.0
                while not stop.is_set():
                    total, parts = _tree_sample(proc, tree_cpu)
                    now = time.perf_counter() - started
                    if total > peak:
                        peak, peak_at = total, now
                        peak_parts = [(name, rss // 2**20) for name, rss in parts]
                    if now - last >= 1.0:
                        timeline.append((round(now, 1), total // 2**20))
                        last = now
                    stop.wait(POLL_S)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            child.wait()
            stop.set()
            poller.join()
        except ImportError:
            child.wait()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # The larger of the two: getrusage counts every descendant our child reaped, psutil every
    # process seen alive (up to its last POLL_S seconds).
    cpu = max(cpu, sum(tree_cpu.values()))
    if not peak:  # no psutil: ru_maxrss is the largest child ever waited for, in KiB
        peak = after.ru_maxrss * 1024
    tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
    return Measured(wall, cpu, peak, child.returncode, source, tail,
                    None if peak_at is None else round(peak_at, 1), peak_parts, timeline)


# --- The child: one flow run ---------------------------------------------------------------


def child_main(config: str, out: str, profile: str | None) -> int:
    """Runs in a fresh process: import the flow, run it once, write what it reports."""
    started = time.perf_counter()
    # As `newsdedup run` does: the extraction pool's forkserver starts before Prefect is imported.
    from extract.pool import prestart

    prestart()
    from flows.pipeline import ingest

    imported = time.perf_counter()
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    summary = ingest(config)
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    finished = time.perf_counter()
    stages = getattr(summary, "stage_seconds", None)
    result = {
        "import_s": round(imported - started, 3),
        "flow_call_s": round(finished - imported, 3),
        "stage_seconds": {k: round(v, 3) for k, v in stages.items()} if stages else None,
        "counts": asdict(summary.counts),
    }
    Path(out).write_text(json.dumps(result, default=str, indent=2), encoding="utf-8")
    return 0


# --- One size ------------------------------------------------------------------------------


def settle(max_s: float = 60.0, idle_below: float = 15.0) -> None:
    """Wait until this machine is idle (all CPUs under `idle_below` percent over a second, up to
    `max_s`), so that no run starts while the one before still loads the machine: a flow run's
    Prefect server goes on storing its thousands of events for seconds after the run exits."""
    try:
        import psutil
    except ImportError:
        return
    started = time.perf_counter()
    while time.perf_counter() - started < max_s:
        if psutil.cpu_percent(interval=1.0) < idle_below:
            break
    waited = time.perf_counter() - started
    if waited > 2.0:
        print(f"  waited {waited:.0f} s for an idle machine", flush=True)


def _flow_run(
    n: int, r: int, mode: str, work: Path, site: Any, profile_dir: Path | None,
    api_url: str | None,
) -> tuple[Measured, dict[str, Any], datetime]:
    """One flow run into a fresh warehouse (a second run into the same one would find every
    page already known)."""
    tag = f"{n}-{mode}-{r}"
    config = work / f"bench{tag}.toml"
    config.write_text(config_text(work / f"bench{tag}.duckdb", site.sources), encoding="utf-8")
    child_out = work / f"flow{tag}.json"
    cmd = [PYTHON, "-m", "bench.bench_e2e", "--child", str(config), str(child_out)]
    if profile_dir and r == 0:
        profile_dir.mkdir(parents=True, exist_ok=True)
        cmd += ["--profile", str(profile_dir / f"flow{n}-{mode}.prof")]
    env = {"PREFECT_API_URL": api_url} if api_url else {}
    settle()
    started = datetime.now(UTC)
    ours = run_measured(cmd, work / f"flow{tag}.log", env)
    if ours.returncode != 0:
        raise RuntimeError(f"flow run on {n} pages failed:\n" + "\n".join(ours.log_tail))
    flow = json.loads(child_out.read_text(encoding="utf-8"))
    print(f"  flow: {ours.wall_s:.1f} s, cpu {ours.cpu_s:.0f} s, "
          f"peak {ours.peak_rss_bytes / GIB:.2f} GiB; stages {flow['stage_seconds']}",
          flush=True)
    return ours, flow, started


def _reference_run(n: int, r: int, work: Path, site_dir: Path) -> tuple[Measured, int]:
    """`newsdedup extract` on the same files, already on disk."""
    extract_out = work / f"extract{n}-{r}.jsonl"
    settle()
    ref = run_measured([NEWSDEDUP, "extract", str(site_dir), "--out", str(extract_out)],
                       work / f"extract{n}-{r}.log")
    if ref.returncode != 0:
        raise RuntimeError(f"newsdedup extract on {n} pages failed:\n" + "\n".join(ref.log_tail))
    n_ok = sum(1 for line in extract_out.open(encoding="utf-8")
               if json.loads(line)["status"] == "ok")
    print(f"  extract only: {ref.wall_s:.1f} s, cpu {ref.cpu_s:.0f} s, "
          f"peak {ref.peak_rss_bytes / GIB:.2f} GiB, {n_ok:,} ok", flush=True)
    extract_out.unlink()
    return ref, n_ok


def _prefect_s(ours: Measured, stages: dict[str, float]) -> float | None:
    """Prefect's overhead: everything in the process that is not one of the five stages:
    Prefect's imports, its temporary API server when there is no running one, flow and task
    bookkeeping. Python's start-up and our own imports are in it too: an upper bound."""
    if not stages:
        return None
    return ours.wall_s - sum(v for k, v in stages.items() if k in STAGES)


def bench_size(
    n: int, work: Path, profile_dir: Path | None, api_url: str | None, reference: bool = True,
    runs: int = 1,
) -> dict[str, Any]:
    """One size, `runs` times each side, alternating (flow, reference, flow, reference...) so
    that a slow spell of this shared VM lands on both; the fastest run of each side is kept,
    as timeit does, and every run is recorded. `api_url`: a running Prefect server's API;
    None: the run starts Prefect's temporary server itself, as a lone `newsdedup run` does."""
    from bench.pages import build, serve

    mode = "server" if api_url else "ephemeral"
    site_dir = work / f"site{n}-{mode}"
    site_dir.mkdir(parents=True)
    load_before = os.getloadavg()[0]
    flows: list[tuple[Measured, dict[str, Any], datetime]] = []
    refs: list[tuple[Measured, int]] = []
    with serve(site_dir) as base_url:
        t = time.perf_counter()
        site = build(site_dir, n, base_url)
        build_s = time.perf_counter() - t
        print(f"  {n:,} pages written in {build_s:.1f} s ({site.n_bytes / n / 1024:.0f} KiB "
              f"a page; {site.kinds})", flush=True)
        for r in range(runs):
            if runs > 1:
                print(f"  run {r + 1} of {runs}", flush=True)
            flows.append(_flow_run(n, r, mode, work, site, profile_dir, api_url))
            if reference:
                refs.append(_reference_run(n, r, work, site_dir))
    ours, flow, flow_started = min(flows, key=lambda f: f[0].wall_s)
    stages = flow["stage_seconds"] or {}
    prefect_s = _prefect_s(ours, stages)
    counts = flow["counts"]
    result: dict[str, Any] = {
        "pages": n,
        "prefect_api": mode,
        "page_kib_mean": round(site.n_bytes / n / 1024, 1),
        "page_kinds": site.kinds,
        "sources": [f"{name} ({kind})" for name, kind, _ in site.sources],
        "runs_per_side": runs,
        # The fastest flow run; the checks on memory and Prefect's share take the worst run.
        "ours": {
            "wall_s": round(ours.wall_s, 2),
            "cpu_s": round(ours.cpu_s, 1),
            "pages_per_s": round(n / ours.wall_s, 2),
            "articles_per_hour": round(counts["n_articles_new"] / ours.wall_s * 3600),
            "peak_memory_gib": round(ours.peak_rss_bytes / GIB, 3),
            "import_s": flow["import_s"],
            "flow_call_s": flow["flow_call_s"],
            "stage_seconds": stages or None,
            "prefect_overhead_s": round(prefect_s, 2) if prefect_s is not None else None,
            "prefect_share": round(prefect_s / ours.wall_s, 3) if prefect_s is not None else None,
            # The overhead's parts: interpreter and imports (Prefect's are most of it), the
            # flow call outside the flow body (API server start/stop, flow-run bookkeeping),
            # and the flow body outside the stages (task runs, artifacts, events).
            "prefect_parts_s": {
                "python_and_imports": flow["import_s"],
                "flow_call_outside_body": round(flow["flow_call_s"] - stages.get("total", 0), 2)
                if stages else None,
                "in_flow_outside_stages": stages.get("prefect"),
            },
            "counts": counts,
        },
        "memory_measured_by": ours.peak_source,
        # When the peak came (seconds after the process started) and who held what (MiB),
        # to set against the stage times in the flow's log; the PSS timeline, MiB a second.
        "flow_process_started_at": flow_started.isoformat(timespec="milliseconds"),
        "memory_peak_at_s": ours.peak_at_s,
        "memory_peak_parts_mib": ours.peak_parts_mib,
        "memory_timeline_mib": ours.timeline,
    }
    every: list[dict[str, Any]] = []
    for r, (m, f, _) in enumerate(flows):
        p = _prefect_s(m, f["stage_seconds"] or {})
        row: dict[str, Any] = {
            "run": r + 1, "flow_wall_s": round(m.wall_s, 2), "flow_cpu_s": round(m.cpu_s, 1),
            "flow_peak_memory_gib": round(m.peak_rss_bytes / GIB, 3),
            "prefect_share": round(p / m.wall_s, 3) if p is not None else None,
        }
        if refs:
            ref_r = refs[r][0]
            row.update(reference_wall_s=round(ref_r.wall_s, 2),
                       reference_cpu_s=round(ref_r.cpu_s, 1),
                       ratio=round(ref_r.wall_s / m.wall_s, 3))
        every.append(row)
    result["runs"] = every
    result["worst_peak_memory_gib"] = max(row["flow_peak_memory_gib"] for row in every)
    shares = [row["prefect_share"] for row in every if row["prefect_share"] is not None]
    result["worst_prefect_share"] = max(shares) if shares else None
    if refs:
        ref, n_ok = min(refs, key=lambda x: x[0].wall_s)
        result["reference"] = {
            "what": "newsdedup extract on the same page files",
            "wall_s": round(ref.wall_s, 2),
            "cpu_s": round(ref.cpu_s, 1),
            "pages_per_s": round(n / ref.wall_s, 2),
            "peak_memory_gib": round(ref.peak_rss_bytes / GIB, 3),
            "n_ok": n_ok,
        }
        result["ratio"] = round(ref.wall_s / ours.wall_s, 3)  # fastest against fastest
        # What a typical run gets: each flow run against the reference run right after it.
        # The fastest against the fastest can pair two fast spells of this VM; the median of
        # the pairs is the figure to expect.
        result["ratio_pairs_median"] = round(statistics.median(row["ratio"] for row in every), 3)
    result["load_1m_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    shutil.rmtree(site_dir, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "e2e.json")
    parser.add_argument("--profile", type=Path, default=None,
                        help="with --child: a cProfile file; otherwise a directory for them")
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the pages and warehouses")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the extraction-only runs (for profiling the flow)")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of each side per size, alternating; the fastest is kept")
    parser.add_argument("--ephemeral-at", type=int, default=1000, metavar="N",
                        help="also run N pages with Prefect's temporary server (0: skip)")
    args = parser.parse_args(argv)
    if args.child:
        config, out = args.child
        return child_main(config, out, str(args.profile) if args.profile else None)

    from bench.pages import SHARED

    if not (SHARED / "eval" / "events" / "ecbplus_dev.jsonl").is_file():
        print(f"bench_e2e: needs the real texts under {SHARED.resolve()}", file=sys.stderr)
        return 2
    sizes: list[dict[str, Any]] = []
    ephemeral: dict[str, Any] | None = None
    tmp = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    try:
        # The runs talk to one Prefect server started here, outside the timing, as a scheduled
        # deployment does (`make serve`); its own fresh PREFECT_HOME keeps runs comparable.
        from flows.server import running_server

        t = time.perf_counter()
        with running_server(home=tmp / "prefect-home", log_path=tmp / "prefect-server.log") as api:
            print(f"Prefect server {api} up in {time.perf_counter() - t:.1f} s (not timed)",
                  flush=True)
            for n in sorted(args.pages):
                print(f"end to end, {n:,} pages", flush=True)
                sizes.append(bench_size(n, tmp, args.profile, api, not args.no_reference,
                                         args.runs))
        if args.ephemeral_at:
            # A lone `newsdedup run` with no server: Prefect starts a temporary one in the run.
            print(f"end to end, {args.ephemeral_at:,} pages, Prefect's temporary server",
                  flush=True)
            ephemeral = bench_size(args.ephemeral_at, tmp, args.profile, None, reference=False)
            same = [s for s in sizes if s["pages"] == args.ephemeral_at]
            if same:
                ephemeral["ratio"] = round(
                    same[0]["reference"]["wall_s"] / ephemeral["ours"]["wall_s"], 3)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    result: dict[str, Any] = {"benchmark": "e2e", "unit": "pages/s", "sizes": sizes,
                              "ephemeral": ephemeral, "targets": TARGETS,
                              "cpus": len(os.sched_getaffinity(0))}
    largest, smallest = sizes[-1], sizes[0]
    checks: dict[str, Any] = {
        "e2e_vs_extract": largest.get("ratio"),
        "e2e_vs_extract_pairs_median": largest.get("ratio_pairs_median"),
        "prefect_share": largest["worst_prefect_share"],
        "peak_memory_gib": largest["worst_peak_memory_gib"],
    }
    if len(sizes) > 1:
        checks["growth"] = round(largest["ours"]["wall_s"] / smallest["ours"]["wall_s"], 2)
        checks["growth_pages"] = round(largest["pages"] / smallest["pages"], 2)
    result["checks"] = checks
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for s in sizes + ([ephemeral] if ephemeral else []):
        o = s["ours"]
        ref = s.get("reference", {}).get("pages_per_s")
        print(f"e2e {s['pages']:>6,} pages ({s['prefect_api']})  {o['pages_per_s']:8.2f} pages/s"
              f"  vs  {ref} pages/s (extract only)  ratio {s.get('ratio')}  "
              f"peak {o['peak_memory_gib']:.2f} GiB  prefect share {o['prefect_share']}")
    print(f"checks {checks}")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
