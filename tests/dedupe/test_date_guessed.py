"""Document.date_guessed: off unless said, and read from `newsdedup cluster` input."""

from __future__ import annotations

import json

from dedupe.records import Document
from flows.commands.cluster import read_documents


def test_date_guessed_is_read_from_cluster_input_and_off_by_default() -> None:
    rows = [
        {"id": "a", "text": "x", "published_at": "2003-01-01", "date_guessed": True},
        {"id": "b", "text": "x", "published_at": "2025-01-07", "date_guessed": False},
        {"id": "c", "text": "x"},
    ]
    docs = list(read_documents(json.dumps(r) for r in rows))
    assert [d.date_guessed for d in docs] == [True, False, False]
    assert Document(doc_id="d", text="x").date_guessed is False
