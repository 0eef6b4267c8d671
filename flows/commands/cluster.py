"""`newsdedup cluster IN.jsonl --out OUT.jsonl`: group articles from a JSON-lines file.

Input lines: `id` (unique; `newsdedup extract`'s `file` stands in when there is no `id`),
`text`, optional `title`, `url`, `published_at` (ISO 8601 or null), `date_guessed` (true when
published_at was guessed from the text); other keys are ignored. Output: one line per input
line, in input order: `id`, `event_id`, `copy_id` (both null for texts too short to group).
The output file is written whole or not at all.

`--runs N` cuts the input lines, in input order, into N consecutive runs and groups each onto
the state the earlier runs left, as scheduled runs do (dedupe.runs); the ids written are the
final ones after the last run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from dedupe import Document
from dedupe.runs import cut, group_in_runs
from flows.commands import positive_int


class InputError(ValueError):
    """A line of the input file that is not a usable article."""


def add_parser(sub: Any, name: str) -> None:
    parser = sub.add_parser(
        name, help="group articles in a JSON-lines file into copies and events"
    )
    parser.add_argument("input", type=Path, help="JSON lines: id, text, [title, url, published_at]")
    parser.add_argument("--out", type=Path, required=True, help="JSON lines: id, event_id, copy_id")
    parser.add_argument(
        "--runs", type=positive_int("{text} is not a whole number >= 1"), default=1,
        metavar="N",
        help="group in N consecutive runs, each onto the state the earlier ones left",
    )
    parser.set_defaults(handler=run)


def _text(row: dict[str, Any], key: str, number: int) -> str:
    value = str(row.get(key) or "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:  # a lone surrogate, "\ud800", is valid JSON, not Unicode
        raise InputError(
            f"line {number}: `{key}` holds {value[err.start:err.end]!r}, half of a surrogate pair,"
            " which is not text; fix the line or drop it"
        ) from err
    return value


def read_documents(lines: Iterable[str]) -> Iterator[Document]:
    """Documents from JSON lines. Ids are compared as text: `1` and `"1"` are one id, and an id
    given twice is an InputError (two articles would otherwise share one assignment)."""
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"line {number}: not JSON ({err})") from err
        if isinstance(row, dict) and "id" not in row and isinstance(row.get("file"), str):
            row["id"] = row["file"]  # a `newsdedup extract` row
        if not isinstance(row, dict) or "id" not in row:
            raise InputError(f"line {number}: expected an object with an `id`")
        if not isinstance(row["id"], str | int) or isinstance(row["id"], bool):
            raise InputError(f"line {number}: `id` must be a string or a whole number,"
                             f" got {row['id']!r}")
        doc_id = _text(row, "id", number)
        if not doc_id:
            raise InputError(f"line {number}: `id` is empty")
        if doc_id in seen:
            raise InputError(
                f"line {number}: id {row['id']!r} was already used on line {seen[doc_id]}"
                " (ids are compared as text, so 1 and \"1\" are the same); give each article"
                " its own id"
            )
        seen[doc_id] = number
        published = row.get("published_at")
        try:
            when = datetime.fromisoformat(published) if published else None
        except (TypeError, ValueError) as err:
            raise InputError(f"line {number}: published_at {published!r} is not ISO 8601") from err
        yield Document(
            doc_id=doc_id,
            text=_text(row, "text", number),
            title=_text(row, "title", number),
            url=_text(row, "url", number),
            published_at=when,
            date_guessed=row.get("date_guessed") is True,
        )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def run(args: argparse.Namespace) -> int:
    if _same_file(args.input, args.out):
        print(f"newsdedup cluster: --out {args.out} is the input file; write the groups to"
              " another file", file=sys.stderr)
        return 2
    if args.out.is_dir():
        print(f"newsdedup cluster: --out {args.out} is a directory; name a file", file=sys.stderr)
        return 2
    # The output is written to a file beside --out and renamed over it at the end: opened now,
    # so that an unwritable --out fails before the grouping work, not after it.
    partial = args.out.with_name(f".{args.out.name}.partial-{os.getpid()}")
    try:
        out = partial.open("w", encoding="utf-8")
    except OSError as err:
        print(f"newsdedup cluster: cannot write --out {args.out}: {err.strerror or err}",
              file=sys.stderr)
        return 2
    try:
        return _run(args, out, partial)
    finally:
        out.close()
        partial.unlink(missing_ok=True)


def _run(args: argparse.Namespace, out: Any, partial: Path) -> int:
    try:
        with args.input.open(encoding="utf-8") as f:
            docs = list(read_documents(f))
    except UnicodeDecodeError as err:
        print(f"newsdedup cluster: {args.input} is not UTF-8 text ({err.reason}:"
              f" {err.object[err.start:err.end]!r}); convert it to UTF-8", file=sys.stderr)
        return 2
    except (OSError, InputError) as err:
        print(f"newsdedup cluster: {err}", file=sys.stderr)
        return 2
    by_id = group_in_runs(cut(docs, args.runs))
    with out:
        for d in docs:
            a = by_id[d.doc_id]
            out.write(
                json.dumps({"id": d.doc_id, "event_id": a.event_id, "copy_id": a.copy_id}) + "\n"
            )
    os.replace(partial, args.out)
    n_events = len({a.event_id for a in by_id.values() if a.event_id})
    n_copies = len({a.copy_id for a in by_id.values() if a.copy_id})
    print(f"{len(docs)} documents -> {n_events} events, {n_copies} copy groups -> {args.out}")
    return 0
