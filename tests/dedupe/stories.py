"""Synthetic articles for property tests: each story has its own made-up vocabulary, so
articles of one story are clearly one event and different stories clearly not."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from dedupe import Document


def story_text(story: int, variant: int, length: int = 60) -> str:
    rng = random.Random(story * 7919 + variant)
    vocab = [f"zq{story}x{i}" for i in range(40)]
    return " ".join(rng.choice(vocab) for _ in range(length))


def story_doc(doc_id: str, story: int, variant: int) -> Document:
    return Document(doc_id=doc_id, text=story_text(story, variant))


def partition(labels: dict[str, str | None]) -> set[frozenset[str]]:
    groups: dict[object, set[str]] = {}
    for doc, label in labels.items():
        groups.setdefault(label if label is not None else ("alone", doc), set()).add(doc)
    return {frozenset(g) for g in groups.values()}


def blended_doc(
    doc_id: str, story: int, variant: int, blend: int, day: int | None, guessed: bool = False
) -> Document:
    """An article mostly of one story with `blend` quarters of the next story's words mixed in:
    borderline similarities, where the clustering's decisions (and their order) matter. Same
    story, variant and blend: a copy. `day`: days after 2025-01-01 it was published, if dated."""
    rng = random.Random(f"{story}/{variant}/{blend}")
    own = [f"zq{story}x{i}" for i in range(40)]
    other = [f"zq{story + 1}x{i}" for i in range(40)]
    n_other = 15 * blend
    words = [rng.choice(own) for _ in range(60 - n_other)] + [
        rng.choice(other) for _ in range(n_other)
    ]
    rng.shuffle(words)
    published = None if day is None else datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=day)
    return Document(
        doc_id=doc_id, text=" ".join(words), published_at=published,
        date_guessed=guessed and published is not None,
    )
