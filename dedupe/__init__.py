"""Group articles: copies (near-identical text) and events (one real-world happening)."""

from dedupe import evaluate
from dedupe.grouping import PayloadError, group
from dedupe.records import Assignment, DocState, Document, Event, Grouping

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
