"""`newsdedup extract PATH... --out FILE.jsonl`: saved HTML pages -> one JSON line per file.

Other tools read this output, so its shape is a contract: one line per input file, in the order
the files were given or found (directories walked depth-first, names sorted), with exactly the
keys in ROW_KEYS. `status` is `ok` or the reason the page gave no article.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from flows.commands import positive_int

ROW_KEYS = ("file", "url", "title", "author", "published_at", "sitename", "language", "text",
            "status")
SUFFIXES = (".html", ".htm", ".html.gz", ".htm.gz")


def add_parser(sub: Any, name: str) -> None:
    parser = sub.add_parser(
        name,
        help="extract articles from saved HTML files into JSON lines",
        description="Extract the main text and metadata of saved pages (.html, .htm, .html.gz), "
        "using every core. One JSON line per file: " + ", ".join(ROW_KEYS) + ".",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="HTML files or directories")
    parser.add_argument("--out", required=True, metavar="FILE.jsonl",
                        help="where to write the JSON lines ('-' for stdout)")
    parser.add_argument("--workers", type=_workers, default=None,
                        help="worker processes (default: one per core)")
    parser.add_argument("--timeout", type=_seconds, default=30.0, metavar="SECONDS",
                        help="hard time limit per page (default: 30)")
    parser.add_argument("--max-bytes", default=MAX_BYTES, metavar="BYTES",
                        type=positive_int("expected a positive whole number of bytes, got {text}"),
                        help=f"skip a page larger than this, gunzipped or not (default {MAX_BYTES},"
                        " the flow's [fetch] max_bytes)")
    parser.set_defaults(handler=run)


# The flow's own cap on a page (FetchPolicy.max_bytes, 10 MiB): a 1 MB .html.gz that inflated
# to 1 GiB took ~2.8 GB here before there was one.
MAX_BYTES = 10 * 1024 * 1024


def _workers(text: str) -> int:
    from extract.workers import check_pool

    try:
        value = int(text)
        check_pool(value, 30.0)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err) if "workers" in str(err) else
                                         f"expected a whole number, got {text!r}") from None
    return value


def _seconds(text: str) -> float:
    from extract.workers import check_pool

    try:
        value = float(text)
        check_pool(None, value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def is_html_file(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


def find_files(paths: Iterable[str]) -> Iterator[str]:
    """Each path as given when it is a file; the HTML files under it, sorted, when a directory."""
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if is_html_file(name):
                        yield os.path.join(root, name)
        else:
            yield path


def extract_file(job: tuple[str, int]) -> dict[str, Any]:
    """One (file, max_bytes) -> one output row. Runs in a worker process."""
    from extract.body import BodyTooLarge
    from extract.clean import clean_html
    from extract.local import read_file

    path, max_bytes = job
    try:
        body = read_file(Path(path), max_bytes)
    except BodyTooLarge:
        return error_row(path, "too_large",
                         f"over --max-bytes {max_bytes} (gunzipped); raise it to read this page")
    except (OSError, ValueError) as err:  # unreadable, not a regular file, bad gzip
        return error_row(path, "extraction_failed", f"{type(err).__name__}: {err}")
    article = clean_html(body)
    return {
        "file": path,
        "url": article.url or None,
        "title": article.title,
        "author": article.author,
        "published_at": article.published_at.isoformat() if article.published_at else None,
        "sitename": article.sitename,
        "language": article.language,
        "text": article.text,
        "status": str(article.status),
    }


# A failed row's detail travels from the worker under this key and is printed, not written.
_DETAIL = "_detail"
# Failed files named one by one on stderr, at most; a summary line counts the rest.
MAX_NAMED_FAILURES = 20


def error_row(path: str, status: str, detail: str = "") -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(ROW_KEYS)
    row.update(file=path, text="", status=status)
    if detail:
        row[_DETAIL] = detail  # said on stderr, not written: the row's keys are a contract
    return row


def _on_error(job: tuple[str, int], reason: Any, detail: str) -> dict[str, Any]:
    return error_row(job[0], str(reason), detail)


def run(args: argparse.Namespace) -> int:
    from extract.pool import imap_ordered

    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        print(f"newsdedup extract: no such file or directory: {', '.join(missing)}",
              file=sys.stderr)
        return 2
    counts: Counter[str] = Counter()
    named = 0
    if args.out != "-":
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    try:
        jobs = ((path, args.max_bytes) for path in find_files(args.paths))
        rows = imap_ordered(extract_file, jobs, on_error=_on_error,
                            workers=args.workers, timeout_s=args.timeout)
        for row in rows:
            counts[row["status"]] += 1
            detail = row.pop(_DETAIL, None)
            if detail:
                named += 1
                if named <= MAX_NAMED_FAILURES:
                    print(f"newsdedup extract: {row['file']}: {row['status']}: {detail}",
                          file=sys.stderr)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if named > MAX_NAMED_FAILURES:
        print(f"newsdedup extract: ... and {named - MAX_NAMED_FAILURES} more failed files"
              " (their rows have the status)", file=sys.stderr)
    summary = ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
    print(f"newsdedup extract: {sum(counts.values())} files ({summary or 'none'}) -> {args.out}",
          file=sys.stderr)
    return 0
