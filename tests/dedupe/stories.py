"""Synthetic articles for property tests: each story has its own made-up vocabulary, so
articles of one story are clearly one event and different stories clearly not."""

from __future__ import annotations

import random

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
