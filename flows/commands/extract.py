"""`newsdedup extract PATH... --out FILE.jsonl`: saved HTML pages -> one JSON line per file.

Other tools read this output, so its shape is a contract: one line per input file, in the order
the files were given or found (directories walked depth-first, names sorted), with exactly the
keys in ROW_KEYS. `status` is `ok` or the reason the page gave no article.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

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
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: every core)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="hard time limit per page (default: 30)")
    parser.set_defaults(handler=run)


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


def read_page(path: str) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read()
    return gzip.decompress(data) if path.lower().endswith(".gz") else data


def extract_file(path: str) -> dict[str, Any]:
    """One file -> one output row. Runs in a worker process."""
    from extract.clean import clean_html

    try:
        body = read_page(path)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
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


def error_row(path: str, status: str, detail: str = "") -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(ROW_KEYS)
    row.update(file=path, text="", status=status)
    return row


def _on_error(path: str, reason: Any, detail: str) -> dict[str, Any]:
    return error_row(path, str(reason), detail)


def run(args: argparse.Namespace) -> int:
    from extract.pool import imap_ordered

    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        print(f"newsdedup extract: no such file or directory: {', '.join(missing)}",
              file=sys.stderr)
        return 2
    counts: Counter[str] = Counter()
    if args.out != "-":
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    try:
        rows = imap_ordered(extract_file, find_files(args.paths), on_error=_on_error,
                            workers=args.workers, timeout_s=args.timeout)
        for row in rows:
            counts[row["status"]] += 1
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    summary = ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
    print(f"newsdedup extract: {sum(counts.values())} files ({summary or 'none'}) -> {args.out}",
          file=sys.stderr)
    return 0
