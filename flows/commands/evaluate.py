"""`newsdedup eval extraction|clustering`: score the pipeline against labelled data."""

from __future__ import annotations

from typing import Any

from flows.commands import eval_clustering, eval_extraction


def add_parser(sub: Any, name: str) -> None:
    parser = sub.add_parser(name, help="score extraction or clustering against labelled data")
    inner = parser.add_subparsers(dest="eval_command", metavar="WHAT")
    inner.required = True
    eval_extraction.add_parser(inner, "extraction")
    eval_clustering.add_parser(inner, "clustering")
