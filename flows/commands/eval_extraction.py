"""`newsdedup eval extraction [--data DIR]`: score extraction against labelled pages.

Prints one line per evaluation set found under DIR (default: ../shared/eval/extraction beside
the repository): mean bag-of-words F1 of title + text against the gold body (text alone in
brackets), and title and publication-date accuracy where the set gives them. Pages are extracted
exactly as the pipeline does (extract.pool.clean_pages -> extract.clean.clean_page).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from extract.records import Article, FetchedPage, Reason

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "eval" / "extraction"


def add_parser(sub: Any, name: str) -> None:
    parser = sub.add_parser(
        name,
        help="score extraction: BoW F1, title and date accuracy",
        description="Score extraction on every set under --data: gold layout "
        "(html/<id>.html.gz + ground-truth.json) or readability layout "
        "(<case>/source.html, expected.html, expected-metadata.json).",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, metavar="DIR",
                        help=f"evaluation sets (default: {DEFAULT_DATA})")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: every core)")
    parser.set_defaults(handler=run)


def _pages(items: Sequence[tuple[str, bytes, str | None]]) -> list[FetchedPage]:
    now = datetime.now(UTC)
    return [
        FetchedPage(url=url or "", final_url=url or "", source="eval", status=Reason.OK,
                    fetched_at=now, body=body, n_bytes=len(body))
        for _, body, url in items
    ]


def run(args: argparse.Namespace) -> int:
    from extract.evaluate import find_sets, score_set
    from extract.pool import clean_pages, imap_ordered

    data: Path = args.data
    if not data.is_dir():
        print(f"newsdedup eval extraction: no data at {data}; pass --data DIR", file=sys.stderr)
        return 2

    def extract_many(items: Sequence[tuple[str, bytes, str | None]]) -> list[Article]:
        with_url = [item for item in items if item[2]]
        if len(with_url) == len(items):
            return clean_pages(_pages(items), workers=args.workers)
        # Pages without a URL are cleaned as offline files, as `newsdedup extract` does.
        return list(imap_ordered(_clean_bytes, [(body, url) for _, body, url in items],
                                 on_error=_failed, workers=args.workers))

    sets = list(find_sets(data))
    if not sets:
        print(f"newsdedup eval extraction: no evaluation sets under {data}", file=sys.stderr)
        return 2
    for path in sets:
        started = time.monotonic()
        score = score_set(path, extract_many)
        print(f"{score.line()} [{time.monotonic() - started:.1f} s]", flush=True)
    return 0


def _clean_bytes(item: tuple[bytes, str | None]) -> Article:
    from extract.clean import clean_html

    body, url = item
    return clean_html(body, url)


def _failed(item: tuple[bytes, str | None], reason: Reason, detail: str) -> Article:
    from extract.clean import content_hash

    return Article(article_id=content_hash("")[:16], url=item[1] or "", canonical_url="",
                   source="eval", status=reason, text="", content_hash=content_hash(""),
                   detail=detail)
