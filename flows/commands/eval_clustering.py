"""`newsdedup eval clustering`: placeholder until its owner lands it."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any, name: str) -> None:
    parser = sub.add_parser(name, help="(not yet implemented)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    raise SystemExit("newsdedup eval clustering: not implemented yet")
