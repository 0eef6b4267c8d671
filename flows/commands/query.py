"""`newsdedup query "SQL" [--format table|csv|json|jsonl] [--limit N] [--timeout S]
[--as-of-run RUN_ID]`: one read-only SQL statement on the published warehouse (or on the snapshot
an earlier run published), its rows streamed to stdout."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from flows.config import ConfigError, load_settings

# A terminal table is for reading: past a thousand rows nobody reads it, and a query such as
# `SELECT * FROM range(300000000)` must not fill the screen (or, before results were streamed,
# the memory). `--limit 0` lifts it, for csv/json output to a file.
DEFAULT_LIMIT = 1000
# A query on a warehouse of a few million rows takes seconds; a minute means a runaway join.
DEFAULT_TIMEOUT_S = 60.0
FORMATS = ("table", "csv", "json", "jsonl")


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of rows, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (no limit) or more")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError("must be a finite number of seconds (0: no limit)")
    return value


def add_parser(sub: Any, name: str) -> None:
    parser = sub.add_parser(name, help="run read-only SQL on the warehouse")
    parser.add_argument("sql", nargs="?", default=None,
                        help='one SQL statement, e.g. "SELECT * FROM latest_events"')
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table (default), csv, json (one array) or jsonl (a row a line)")
    parser.add_argument("--limit", type=_limit, default=DEFAULT_LIMIT, metavar="ROWS",
                        help=f"print at most ROWS rows (default {DEFAULT_LIMIT}; 0: all)")
    parser.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                        help=f"stop the query after SECONDS (default {DEFAULT_TIMEOUT_S:g};"
                        " 0: no limit)")
    parser.add_argument("--warehouse", type=Path, default=None, help="warehouse directory")
    parser.add_argument("--config", type=Path, default=None, help="settings file")
    parser.add_argument("--as-of-run", default=None, metavar="RUN_ID",
                        help="read the warehouse as that run published it (time travel)")
    parser.add_argument("--session-sql", action="store_true",
                        help="print the lines that open the published warehouse in your own"
                             " DuckDB 1.5.5 session, and exit")
    parser.set_defaults(handler=run)


def warehouse_path(args: argparse.Namespace) -> Path:
    """--warehouse, else the settings file's [warehouse].path, else ./newsdedup.lake."""
    if args.warehouse is not None:
        return Path(args.warehouse)
    if args.config is not None or Path("newsdedup.toml").exists():
        return load_settings(args.config).warehouse_path
    return Path("newsdedup.lake")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def format_table(
    columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]], max_width: int = 60
) -> str:
    def cell(v: Any) -> str:
        text = "" if v is None else str(_plain(v)).replace("\n", " ")
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[cell(v) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    out.append(f"({len(cells)} row{'s' if len(cells) != 1 else ''})")
    return "\n".join(out)


def write_rows(
    fmt: str, columns: tuple[str, ...], rows: Iterator[tuple[Any, ...]], out: TextIO
) -> None:
    """Rows to `out` as they come (table: once all are in, to size the columns)."""
    if fmt == "table":
        out.write(format_table(columns, rows) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_plain(v) for v in row])
    else:  # json: one array, as `duckdb -json` and sqlite-utils --json write; jsonl: a row a line
        sep, first = ("\n" if fmt == "jsonl" else ",\n"), True
        if fmt == "json":
            out.write("[")
        for row in rows:
            record = {c: _plain(v) for c, v in zip(columns, row, strict=True)}
            out.write(("" if first else sep) + json.dumps(record, ensure_ascii=False, default=str))
            first = False
        out.write("]\n" if fmt == "json" else ("" if first else "\n"))


def run(args: argparse.Namespace) -> int:
    from warehouse.queries import QueryTimeout, WarehouseError, open_query

    limit = args.limit or None
    try:
        path = warehouse_path(args)
        if args.session_sql:
            from warehouse.queries import session_sql

            print(session_sql(path, as_of_run=args.as_of_run))
            return 0
        if args.sql is None:
            print("newsdedup query: give one SQL statement, or --session-sql", file=sys.stderr)
            return 2
        with open_query(path, args.sql, timeout_s=args.timeout or None,
                        as_of_run=args.as_of_run) as stream:
            write_rows(args.format, stream.columns, stream.rows(limit), sys.stdout)
            more = limit is not None and stream.has_more()
    except (ConfigError, WarehouseError) as exc:  # NoWarehouse, QueryError, WarehouseBusy, ...
        sys.stdout.flush()
        hint = "; --timeout SECONDS allows longer (0: no limit)" if isinstance(
            exc, QueryTimeout) else ""
        print(f"newsdedup query: {exc}{hint}", file=sys.stderr)
        return 2
    if more:
        sys.stdout.flush()
        print(f"newsdedup query: showed the first {limit} rows; --limit 0 shows all,"
              " or add a LIMIT or WHERE", file=sys.stderr)
    return 0
