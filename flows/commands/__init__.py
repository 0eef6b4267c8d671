"""One module per CLI command. Each exposes `add_parser(subparsers)` and `run(args) -> int`."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def positive_int(message: str) -> Callable[[str], int]:
    """An argparse `type`: a whole number >= 1, else `message` with {text} (the repr of what
    was given) filled in."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(message.format(text=repr(text)))
        return value

    return parse
