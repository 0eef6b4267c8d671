"""`newsdedup query "SQL" [--format table|csv|json] [--as-of-run RUN_ID]`: read-only SQL on the
published warehouse, or on the snapshot an earlier run published."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from flows.config import ConfigError, load_settings
from warehouse.queries import QueryResult, WarehouseError, run_query, session_sql


def add_parser(sub: Any, name: str) -> None:
    parser = sub.add_parser(name, help="run read-only SQL on the warehouse")
    parser.add_argument("sql", nargs="?", default=None,
                        help='one SQL statement, e.g. "SELECT * FROM latest_events"')
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
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


def format_table(result: QueryResult, max_width: int = 60) -> str:
    def cell(v: Any) -> str:
        text = "" if v is None else str(_plain(v)).replace("\n", " ")
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    rows = [[cell(v) for v in row] for row in result.rows]
    widths = [len(c) for c in result.columns]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    try:
        path = warehouse_path(args)
        if args.session_sql:
            print(session_sql(path, as_of_run=args.as_of_run))
            return 0
        if args.sql is None:
            print("newsdedup query: give one SQL statement, or --session-sql", file=sys.stderr)
            return 2
        result = run_query(path, args.sql, as_of_run=args.as_of_run)
    except (ConfigError, WarehouseError) as exc:  # NoWarehouse, QueryError, WarehouseBusy, ...
        print(f"newsdedup query: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        for row in result.rows:
            record = {c: _plain(v) for c, v in zip(result.columns, row, strict=True)}
            print(json.dumps(record, ensure_ascii=False, default=str))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows([[_plain(v) for v in row] for row in result.rows])
    else:
        print(format_table(result))
    return 0
