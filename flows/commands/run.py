"""`newsdedup run [--config FILE]`: one run of the ingestion flow, then a summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from flows.config import ConfigError, load_settings


def add_parser(sub: Any, name: str) -> None:
    parser = sub.add_parser(name, help="run the ingestion flow once and print a summary")
    parser.add_argument(
        "--config", type=Path, default=None, help="settings file (default ./newsdedup.toml)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)  # fail fast, before Prefect starts, on a bad file
    except ConfigError as exc:
        print(f"newsdedup run: {exc}", file=sys.stderr)
        return 2
    from warehouse.errors import WarehouseError
    from warehouse.store import hold_run_lock

    try:
        # Another run on this warehouse is a sentence now, not a flow run that fails inside
        # Prefect with 27 frames of traceback around the same sentence.
        with hold_run_lock(settings.warehouse_path):
            pass
    except WarehouseError as exc:
        print(f"newsdedup run: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"newsdedup run: cannot write the warehouse {settings.warehouse_path}:"
              f" {exc.strerror or exc}; set [warehouse] path to a folder you can write",
              file=sys.stderr)
        return 2
    if settings.extract.executor == "local":
        # The extraction pool's forkserver imports trafilatura while this process imports
        # Prefect (~3 s) and creates the flow run, instead of after the first pages arrive.
        from extract.pool import prestart

        prestart()
    from flows.interrupt import stop_at_once
    from flows.pipeline import ingest, summarize

    with stop_at_once():
        summary = ingest(str(args.config) if args.config else None)
    print(summarize(summary))
    # Exit 1 only when nothing worked: a schedule or a script sees a run that fetched nothing
    # (a typo in the only feed's URL) as failed; one dead source among many is in the summary.
    return 1 if summary.every_source_failed else 0
