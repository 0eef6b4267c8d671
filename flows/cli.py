"""The `newsdedup` command line: parses arguments and hands each command to its module."""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import MutableMapping, Sequence

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
# The one-line help of each command, for `newsdedup --help` without importing any command
# module (importing them all took 5 s on a loaded machine). tests/flows/test_cli.py checks that
# each matches the help its module gives.
SUMMARIES: dict[str, str] = {
    "run": "run the ingestion flow once and print a summary",
    "serve": "register the scheduled deployment and run its schedule (needs a Prefect server)",
    "query": "run read-only SQL on the warehouse",
    "extract": "extract articles from saved HTML files into JSON lines",
    "cluster": "group articles in a JSON-lines file into copies and events",
    "eval": "score extraction or clustering against labelled data",
    "export": "export the warehouse's tables and views to Parquet files",
    "demo": "run the pipeline once on the bundled sample",
}

# Prefect settings the CLI carries wherever it runs. A prefect.toml is read only from the
# working directory, so the repository's own did not apply in a user's folder: there Prefect
# tried to send telemetry (this tool never calls out) and gave its temporary server 20 s to
# start, which a 2-core machine under load misses (~15 s typical, more with a fresh
# PREFECT_HOME, whose database is created first). Set only where the environment has no value,
# so a user's own PREFECT_* variables still win.
PREFECT_DEFAULTS: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def set_prefect_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Put PREFECT_DEFAULTS into the environment (before Prefect is imported: it reads its
    settings then; child processes, such as the temporary server, inherit them)."""
    env = os.environ if environ is None else environ
    for key, value in PREFECT_DEFAULTS.items():
        env.setdefault(key, value)


def command(name: str = "newsdedup") -> str:
    """How to type one of this environment's commands in a hint: its bare name when the shell
    finds this one on PATH, else its path (`make demo` runs .venv/bin/newsdedup, which a new
    user's shell does not find, and a hint saying `newsdedup query ...` then failed)."""
    import shutil

    here = os.path.join(os.path.dirname(sys.executable), name)
    found = shutil.which(name)
    if found and os.path.realpath(found) == os.path.realpath(here):
        return name
    if not os.path.exists(here):
        return name
    relative = os.path.relpath(here)
    return relative if not relative.startswith("..") else here


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or, with `only`, a parser in which only that command's module is
    imported (with `only=""`, none: enough for `newsdedup --help`): every command module pulls
    in its libraries (`extract` trafilatura, `cluster` datasketch and SciPy, `query` DuckDB),
    ~1 s of imports together, which a one-command process should not pay (it was 1.0 of the
    1.4 s `newsdedup extract` took to start)."""
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
            sub.add_parser(name, help=SUMMARIES[name])
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command named in argv when it comes first (`newsdedup extract ...`), else None."""
    return argv[0] if argv and argv[0] in COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    set_prefect_defaults()
    parser = build_parser(only=_command(argv) or "")
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print(f"newsdedup {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `newsdedup query ... | head`: the reader has gone; what it wanted it got. Point stdout
        # at /dev/null so that the interpreter's final flush does not fail a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    finally:
        # Prefect's task machinery leaves reference cycles that hold closed DuckDB objects;
        # collected only at interpreter shutdown, duckdb's bindings then print pages of
        # "nanobind: leaked instance" warnings. Collect them while the interpreter is whole.
        gc.collect()


if __name__ == "__main__":
    sys.exit(main())
