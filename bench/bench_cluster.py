"""Grouping 20,000 news documents: `newsdedup cluster` against a plain datasketch script.

    .venv/bin/python bench/bench_cluster.py [--n 20000] [--scale 100000] [--quick] [--out F.json]

Corpus: bench/make_corpus.py (real article texts and spliced originals, plus copies of them
in other outlets' chrome, edited, cut), with gold copy groups.
ours: `newsdedup cluster IN --out OUT` in a subprocess (interpreter start and imports
included): copies AND events.
reference: the plain script everyone writes first: per document a datasketch MinHash(128)
updated shingle by shingle over lower-cased word 5-shingles, inserted into MinHashLSH at 0.8
and queried, union-find over the hits: copies only.
Both are timed in this one run, one after the other, and scored on copy groups (B-cubed F1
against the gold copy_group). Then ours runs on --scale documents: time, ratio to the
--n time (must stay <= 6x for 5x the documents) and peak memory (max RSS of the subprocess).
Prints one line per comparison (name, ours, reference, ratio, unit) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.make_corpus import make_corpus  # noqa: E402
from dedupe.evaluate import bcubed  # noqa: E402

_WORDS = re.compile(r"\w+")


def reference_script(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The plain datasketch script (copies only): returns doc id -> copy group root id."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for row in rows:
        doc_id = str(row["id"])
        tokens = _WORDS.findall(str(row["text"]).lower())
        m = MinHash(num_perm=128)
        for i in range(max(1, len(tokens) - 4)):
            m.update(" ".join(tokens[i : i + 5]).encode("utf-8"))
        parent[doc_id] = doc_id
        for other in lsh.query(m):
            ra, rb = find(doc_id), find(other)
            if ra != rb:
                parent[ra] = rb
        lsh.insert(doc_id, m)
    return {d: find(d) for d in parent}


def run_ours(path: Path, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of `newsdedup cluster` on `path`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "flows.cli", "cluster", str(path), "--out", str(out)],
        cwd=REPO, check=True, stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak_kib, before) / (1 << 20)


def write(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def copy_f1(rows: list[dict[str, Any]], pred: Mapping[str, str | None]) -> float:
    gold = {str(r["id"]): str(r["copy_group"]) for r in rows}
    return round(bcubed(gold, pred).f1, 4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--scale", type=int, default=100000)
    parser.add_argument("--quick", action="store_true", help="--n 4000 --scale 20000")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cluster.json")
    args = parser.parse_args()
    if args.quick:
        args.n, args.scale = 4000, 20000

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        rows = list(make_corpus(args.n))
        corpus = tmpdir / "corpus.jsonl"
        write(rows, corpus)

        ours_s, ours_gib = run_ours(corpus, tmpdir / "ours.jsonl")
        ours_pred = {
            r["id"]: r["copy_id"]
            for r in map(json.loads, (tmpdir / "ours.jsonl").read_text().splitlines())
        }
        n_events = len({
            r["event_id"] for r in map(json.loads, (tmpdir / "ours.jsonl").read_text().splitlines())
        })
        start = time.perf_counter()
        ref_pred = reference_script(rows)
        ref_s = time.perf_counter() - start
        main_row = {
            "n_docs": args.n,
            "ours": round(ours_s, 2),
            "reference": round(ref_s, 2),
            "ratio": round(ref_s / ours_s, 2),
            "unit": "s",
            "reference_is": "plain datasketch script (MinHash.update loop, LSH 0.8, union-find)",
            "copy_bcubed_f1_ours": copy_f1(rows, ours_pred),
            "copy_bcubed_f1_reference": copy_f1(rows, ref_pred),
            "ours_events": n_events,
            "ours_peak_rss_gib": round(ours_gib, 2),
        }

        big = list(make_corpus(args.scale))
        big_path = tmpdir / "big.jsonl"
        write(big, big_path)
        del big
        scale_s, scale_gib = run_ours(big_path, tmpdir / "big_out.jsonl")
        budget = 6.0 * ours_s
        scale_row = {
            "n_docs": args.scale,
            "ours": round(scale_s, 2),
            "reference": round(budget, 2),
            "ratio": round(budget / scale_s, 2),
            "unit": "s",
            "reference_is": f"6x our time on {args.n:,} docs (the scaling budget)",
            "time_ratio_to_n": round(scale_s / ours_s, 2),
            "ours_peak_rss_gib": round(scale_gib, 2),
        }

    result = {"benchmark": "cluster", "unit": "s", "sizes": [main_row, scale_row],
              "cpus": os.cpu_count()}
    for row in (main_row, scale_row):
        print(f"grouping ({row['n_docs']:,} docs)  ours {row['ours']} s  "
              f"reference {row['reference']} s  ratio {row['ratio']}  unit s  "
              f"[{row['reference_is']}]")
    print(f"copy-group B-cubed F1: ours {main_row['copy_bcubed_f1_ours']}, "
          f"reference {main_row['copy_bcubed_f1_reference']}; "
          f"{args.scale:,} docs took {scale_row['time_ratio_to_n']}x the {args.n:,}-doc time, "
          f"peak RSS {scale_row['ours_peak_rss_gib']} GiB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
