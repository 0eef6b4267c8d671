"""`newsdedup eval clustering FILE.jsonl`: score event grouping against the file's `event` field.

Groups the file's articles (as `newsdedup cluster` does) and prints pairwise and B-cubed
precision/recall/F1. `--runs N` also groups them in N scheduled runs (dedupe.runs), in the
order `--order` gives (`time`: publication order, undated last; `shuffle:SEED`; `input`), and
prints both side by side. `--predictions OUT.jsonl` scores an existing `cluster` output
instead. `--sweep` re-runs grouping over a range of event join thresholds, for tuning on a dev
set; `--by-halves FIELD` also scores the two halves of the file split on FIELD (odd/even, e.g.
`topic`), to see whether a threshold holds on data it was not picked on.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dedupe import Document, evaluate
from dedupe.runs import cut, group_in_runs
from dedupe.settings import DEFAULT, GroupingSettings, SettingsError
from flows.commands.cluster import InputError, read_documents


def add_parser(sub: Any, name: str) -> None:
    parser = sub.add_parser(name, help="score copy/event grouping against gold `event` labels")
    parser.add_argument("input", type=Path, help="JSON lines with id, text, ..., and gold `event`")
    parser.add_argument("--predictions", type=Path, help="score this `cluster` output instead")
    parser.add_argument(
        "--sweep", action="store_true", help="score a range of event join thresholds"
    )
    parser.add_argument(
        "--thresholds",
        default="0.06,0.07,0.08,0.09,0.10,0.11,0.12,0.14,0.16",
        help="comma-separated cosine thresholds for --sweep",
    )
    parser.add_argument("--by-halves", metavar="FIELD", help="also score odd/even FIELD halves")
    parser.add_argument(
        "--runs", type=int, default=1, metavar="N",
        help="also group in N scheduled runs, each onto the state the earlier ones left",
    )
    parser.add_argument(
        "--open-days", type=float, default=None, metavar="DAYS",
        help="with --runs: each run sees only the events open within DAYS (as the flow's"
             " [dedupe] open_days does); default: every earlier state",
    )
    parser.add_argument(
        "--order", default="time", metavar="time|shuffle:SEED|input",
        help="the order articles arrive in over --runs (default: time, publication order)",
    )
    parser.set_defaults(handler=run)


def _ordered(docs: list[Document], order: str) -> list[Document]:
    if order == "input":
        return list(docs)
    if order == "time":
        return sorted(docs, key=lambda d: (
            d.published_at is None, d.published_at.isoformat() if d.published_at else "",
            d.doc_id,
        ))
    if order.startswith("shuffle:") and order[8:].isdigit():
        out = list(docs)
        random.Random(int(order[8:])).shuffle(out)
        return out
    raise InputError(f"--order {order!r}: use time, input or shuffle:SEED (e.g. shuffle:1)")


def _line(label: str, gold: dict[str, str], pred: dict[str, str | None]) -> str:
    b = evaluate.bcubed(gold, pred)
    p = evaluate.pairwise(gold, pred)
    return (
        f"{label:<14} B-cubed P {b.precision:.3f} R {b.recall:.3f} F1 {b.f1:.3f}   "
        f"pairwise P {p.precision:.3f} R {p.recall:.3f} F1 {p.f1:.3f}"
    )


def _halves(rows: list[dict[str, Any]], field: str | None) -> list[tuple[str, set[str]]]:
    if not field:
        return []
    out: list[tuple[str, set[str]]] = []
    for parity, name in ((1, "odd"), (0, "even")):
        ids = set()
        for r in rows:
            value = r.get(field)
            try:
                if int(value) % 2 == parity:  # type: ignore[arg-type]
                    ids.add(str(r["id"]))
            except (TypeError, ValueError):
                continue
        out.append((f"{field} {name}", ids))
    return out


def _report(
    label: str,
    gold: dict[str, str],
    predict: Callable[[Sequence[Document]], dict[str, str | None]],
    docs: list[Document],
    halves: list[tuple[str, set[str]]],
) -> None:
    pred = predict(docs)
    print(_line(label, gold, pred))
    for name, ids in halves:
        sub = [d for d in docs if d.doc_id in ids]
        sub_pred = predict(sub)
        print(_line(f"  {name}", {i: gold[i] for i in ids}, sub_pred))


def _grouper(
    settings: GroupingSettings, runs: int, order: str, open_days: float | None = None
) -> Callable[[Sequence[Document]], dict[str, str | None]]:
    def grouped(docs: Sequence[Document]) -> dict[str, str | None]:
        placed = group_in_runs(cut(_ordered(list(docs), order), runs), settings,
                               open_days=open_days)
        return {d.doc_id: placed[d.doc_id].event_id if d.doc_id in placed else None
                for d in docs}
    return grouped


def run(args: argparse.Namespace) -> int:
    try:
        text = args.input.read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in text if line.strip()]
        docs = list(read_documents(text))
        if args.runs < 1:
            raise InputError(f"--runs {args.runs}: must be at least 1")
        _ordered([], args.order)
    except (OSError, InputError, json.JSONDecodeError) as err:
        print(f"newsdedup eval clustering: {err}", file=sys.stderr)
        return 2
    missing = [r.get("id") for r in rows if "event" not in r]
    if missing:
        print(
            f"newsdedup eval clustering: {len(missing)} lines have no gold `event` "
            f"(first: {missing[0]!r})",
            file=sys.stderr,
        )
        return 2
    gold = {str(r["id"]): str(r["event"]) for r in rows}
    print(f"{len(gold)} documents, {len(set(gold.values()))} gold events")
    halves = _halves(rows, args.by_halves)

    if args.predictions:
        pred_rows = [json.loads(x) for x in args.predictions.read_text().splitlines() if x.strip()]
        pred = {str(r["id"]): r.get("event_id") for r in pred_rows}
        print(_line("predictions", gold, pred))
        for name, ids in halves:
            print(_line(f"  {name}", {i: gold[i] for i in ids}, {i: pred[i] for i in ids}))
        return 0
    if not args.sweep:
        _report("one batch", gold, _grouper(DEFAULT, 1, "input"), docs, halves)
        if args.runs > 1:
            label = f"{args.runs} runs {args.order}"
            _report(label, gold, _grouper(DEFAULT, args.runs, args.order), docs, halves)
            if args.open_days is not None:
                _report(f"{label}, open_days {args.open_days:g}", gold,
                        _grouper(DEFAULT, args.runs, args.order, args.open_days), docs, halves)
        return 0
    try:
        sweep = [DEFAULT.with_values(join=float(x)) for x in args.thresholds.split(",")]
    except (ValueError, SettingsError) as err:
        print(f"newsdedup eval clustering: --thresholds: {err}", file=sys.stderr)
        return 2
    for settings in sweep:
        _report(f"join {settings.join:.3f}", gold, _grouper(settings, args.runs, args.order),
                docs, halves)
    return 0
