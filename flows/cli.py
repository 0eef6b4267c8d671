"""The `newsdedup` command line: parses arguments and hands each command to its module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Command name -> module under flows.commands. Modules are imported lazily so that
# `newsdedup query` does not pay for importing Prefect or trafilatura.
COMMANDS: dict[str, str] = {
    "run": "run",
    "serve": "serve",
    "query": "query",
    "extract": "extract",
    "cluster": "cluster",
    "eval": "evaluate",
    "export": "export",
    "demo": "demo",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsdedup",
        description="Scheduled news ingestion and deduplication: copies and events in DuckDB.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"flows.commands.{module_name}")
        module.add_parser(sub, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
