"""`newsdedup export --format parquet DIR [--warehouse PATH]`: every table and the main views of
the published warehouse, one DIR/<name>.parquet each, for downstream tools."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from flows.commands.query import warehouse_path
from flows.config import ConfigError
from warehouse.errors import WarehouseError
from warehouse.export import EXPORTS, FORMATS, export_parquet


def add_parser(sub: Any, name: str) -> None:
    parser = sub.add_parser(
        name, help="export the warehouse's tables and views to Parquet files"
    )
    parser.add_argument("dir", type=Path, help="destination directory (created if missing)")
    parser.add_argument("--format", choices=FORMATS, default="parquet")
    parser.add_argument(
        "--only", default=None, metavar="NAME,...",
        help=f"export only these (default all: {', '.join(EXPORTS)})",
    )
    parser.add_argument("--warehouse", type=Path, default=None, help="warehouse directory")
    parser.add_argument("--config", type=Path, default=None, help="settings file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    names = EXPORTS
    if args.only:
        names = tuple(n.strip() for n in args.only.split(",") if n.strip())
    try:
        path = warehouse_path(args)
        files = export_parquet(path, args.dir, names)
    except (ConfigError, WarehouseError) as exc:
        print(f"newsdedup export: {exc}", file=sys.stderr)
        return 2
    for f in files:
        print(f"{f.path}  {f.rows} rows")
    print(f"exported {len(files)} files from {path}")
    return 0
