"""`newsdedup demo`: serve the bundled sample on 127.0.0.1, run the pipeline once on it, and
print the events it found. Writes ./newsdedup.lake (or --warehouse)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from flows.cli import command
from flows.sampleserver import SAMPLE_PORT, SamplePortBusy, sample_site


def add_parser(sub: Any, name: str) -> None:
    parser = sub.add_parser(name, help="run the pipeline once on the bundled sample")
    parser.add_argument("--warehouse", type=Path, default=Path("newsdedup.lake"))
    parser.add_argument("--port", type=int, default=SAMPLE_PORT,
                        help=f"serve the sample on this port (default {SAMPLE_PORT}; it is part"
                        " of the articles' URLs, so keep one port per warehouse)")
    parser.set_defaults(handler=run)


def demo_config(base_url: str, warehouse: Path) -> str:
    return (
        "[warehouse]\n"
        f"path = {str(warehouse.resolve())!r}\n\n"
        "[fetch]\n"
        "allow_private_networks = true   # the sample is served on 127.0.0.1\n"
        "per_host_delay_s = 0.0\n\n"
        "[[sources]]\n"
        'name = "sample"\n'
        f'feed = "{base_url}/feed.xml"\n'
    )


def run(args: argparse.Namespace) -> int:
    from flows.interrupt import stop_at_once
    from flows.pipeline import ingest, summarize
    from warehouse.queries import event_summaries, read_only

    # One port, always (flows.sampleserver.SAMPLE_PORT says why): a second `make demo` then
    # adds nothing.
    try:
        with (
            stop_at_once(),
            sample_site(args.port) as base_url,
            tempfile.TemporaryDirectory() as tmp,
        ):
            config = Path(tmp) / "newsdedup.toml"
            config.write_text(demo_config(base_url, args.warehouse), encoding="utf-8")
            summary = ingest(str(config))
    except SamplePortBusy as exc:
        print(f"newsdedup demo: {exc}", file=sys.stderr)
        return 2
    print()
    print(summarize(summary))
    print()
    with read_only(summary.warehouse) as con:
        events = event_summaries(con)
    print(f"{len(events)} events:")
    for e in events:
        published = e.first_published_at.date().isoformat() if e.first_published_at else "?"
        when = e.event_date or published
        print(f"- {e.title}  [{when}]  {e.n_articles} article(s), {e.n_sources} source(s)")
        for title in e.member_titles:
            print(f"    · {title}")
    print()
    print(f"warehouse: {summary.warehouse.resolve()}")
    print(f'try: {command()} query "SELECT title, event_date, n_articles FROM events"')
    return 0
