"""`newsdedup cluster IN.jsonl --out OUT.jsonl`: group articles from a JSON-lines file.

Input lines: `id`, `text`, optional `title`, `url`, `published_at` (ISO 8601 or null),
`date_guessed` (true when published_at was guessed from the text); other keys are ignored.
Output: one line per input line, in input order: `id`, `event_id`, `copy_id` (both null for
texts too short to group).

`--runs N` cuts the input lines, in input order, into N consecutive runs and groups each onto
the state the earlier runs left, as scheduled runs do (dedupe.runs); the ids written are the
final ones after the last run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from dedupe import Document
from dedupe.runs import cut, group_in_runs


class InputError(ValueError):
    """A line of the input file that is not a usable article."""


def add_parser(sub: Any, name: str) -> None:
    parser = sub.add_parser(
        name, help="group articles in a JSON-lines file into copies and events"
    )
    parser.add_argument("input", type=Path, help="JSON lines: id, text, [title, url, published_at]")
    parser.add_argument("--out", type=Path, required=True, help="JSON lines: id, event_id, copy_id")
    parser.add_argument(
        "--runs", type=_positive, default=1, metavar="N",
        help="group in N consecutive runs, each onto the state the earlier ones left",
    )
    parser.set_defaults(handler=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def read_documents(lines: Iterable[str]) -> Iterator[Document]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"line {number}: not JSON ({err})") from err
        if not isinstance(row, dict) or "id" not in row:
            raise InputError(f"line {number}: expected an object with an `id`")
        published = row.get("published_at")
        try:
            when = datetime.fromisoformat(published) if published else None
        except (TypeError, ValueError) as err:
            raise InputError(f"line {number}: published_at {published!r} is not ISO 8601") from err
        yield Document(
            doc_id=str(row["id"]),
            text=str(row.get("text") or ""),
            title=str(row.get("title") or ""),
            url=str(row.get("url") or ""),
            published_at=when,
            date_guessed=row.get("date_guessed") is True,
        )


def run(args: argparse.Namespace) -> int:
    try:
        with args.input.open(encoding="utf-8") as f:
            docs = list(read_documents(f))
    except (OSError, InputError) as err:
        print(f"newsdedup cluster: {err}", file=sys.stderr)
        return 2
    by_id = group_in_runs(cut(docs, args.runs))
    with args.out.open("w", encoding="utf-8") as out:
        for d in docs:
            a = by_id[d.doc_id]
            out.write(
                json.dumps({"id": d.doc_id, "event_id": a.event_id, "copy_id": a.copy_id}) + "\n"
            )
    n_events = len({a.event_id for a in by_id.values() if a.event_id})
    n_copies = len({a.copy_id for a in by_id.values() if a.copy_id})
    print(f"{len(docs)} documents -> {n_events} events, {n_copies} copy groups -> {args.out}")
    return 0
