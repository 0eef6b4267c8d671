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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or, with `only`, a parser in which only that command's module is
    imported: every command module pulls in its libraries (`extract` trafilatura, `cluster`
    datasketch and SciPy, `query` DuckDB), ~1 s of imports together, which a one-command
    process should not pay (it was 1.0 of the 1.4 s `newsdedup extract` took to start)."""
    parser = argparse.ArgumentParser(
        prog="newsdedup",
        description="Scheduled news ingestion and deduplication: copies and events in DuckDB.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name in COMMANDS.items():
        if only is None or name == only:
            module = importlib.import_module(f"flows.commands.{module_name}")
            module.add_parser(sub, name)
        else:
            sub.add_parser(name)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command named in argv when it comes first (`newsdedup extract ...`), else None."""
    return argv[0] if argv and argv[0] in COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(only=_command(argv))
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
