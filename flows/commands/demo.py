"""`newsdedup demo`: serve the bundled sample on 127.0.0.1, run the pipeline once on it, and
print the events it found. Writes ./newsdedup.lake (or --warehouse)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from flows.sampleserver import SAMPLE_DIR, serve_directory

DEMO_PORT = 8765


def add_parser(sub: Any, name: str) -> None:
    parser = sub.add_parser(name, help="run the pipeline once on the bundled sample")
    parser.add_argument("--warehouse", type=Path, default=Path("newsdedup.lake"))
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
    from flows.pipeline import ingest, summarize
    from warehouse.queries import event_summaries, read_only

    # A fixed port keeps the sample's URLs, and so its article ids, the same from one demo run
    # to the next: a second `make demo` then adds nothing.
    with (
        serve_directory(SAMPLE_DIR, port=DEMO_PORT) as base_url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        config = Path(tmp) / "newsdedup.toml"
        config.write_text(demo_config(base_url, args.warehouse), encoding="utf-8")
        summary = ingest(str(config))
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
    print('try: newsdedup query "SELECT title, event_date, n_articles FROM events"')
    return 0
