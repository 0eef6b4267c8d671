"""The `newsdedup` command line: parses arguments and hands each command to its module."""

from __future__ import annotations

import argparse
import gc
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
    try:
        return int(args.handler(args))
    finally:
        # Prefect's task machinery leaves reference cycles that hold closed DuckDB objects;
        # collected only at interpreter shutdown, duckdb's bindings then print pages of
        # "nanobind: leaked instance" warnings. Collect them while the interpreter is whole.
        gc.collect()


if __name__ == "__main__":
    sys.exit(main())
