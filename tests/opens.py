"""Counting the connections a run makes to the lake (warehouse.lake.connect is the one way in,
for the writer and for readers alike): the session's `sample_run` (tests/conftest.py) records
each of its runs here, and tests/test_end_to_end.py checks a run opens the warehouse once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from warehouse import lake

# How often each run of `sample_run` connected to the lake: {"writer": n, "reader": n}.
OPENS: list[Counter[str]] = []


@contextmanager
def counting_opens() -> Iterator[Counter[str]]:
    """Count the connections to the lake made inside the block."""
    counts: Counter[str] = Counter()
    real = lake.connect

    def connect(path: Path, *, read_only: bool = False, **kw: Any) -> Any:
        counts["reader" if read_only else "writer"] += 1
        return real(path, read_only=read_only, **kw)

    lake.connect = connect  # type: ignore[assignment]
    try:
        yield counts
    finally:
        lake.connect = real
