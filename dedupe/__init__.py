"""Group articles: copies (near-identical text) and events (one real-world happening).

The records import at once; `group` and `PayloadError` (NumPy, SciPy, datasketch, wordfreq:
~0.7 s) only when first used. The warehouse and the flow need the records from their first
line but grouping only at the end of a run, and a run's first seconds, spent importing on one
core, are what its user waits through before any page is fetched."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dedupe import evaluate
from dedupe.records import Assignment, DocState, Document, Event, Grouping

if TYPE_CHECKING:
    from dedupe.grouping import group
    from dedupe.state import PayloadError

__all__ = [
    "Assignment",
    "DocState",
    "Document",
    "Event",
    "Grouping",
    "PayloadError",
    "evaluate",
    "group",
]

_LAZY = {"group": "dedupe.grouping", "PayloadError": "dedupe.state"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dedupe' has no attribute {name!r}")
