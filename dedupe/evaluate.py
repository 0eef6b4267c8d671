"""Clustering scores against gold labels: pairwise and B-cubed precision, recall and F1.

Both take two mappings from item id to cluster label, over the same items. An item whose
predicted label is None (a document that was never grouped) counts as a cluster of its own.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float


class LabelMismatch(ValueError):
    """Gold and predicted labels do not cover the same items."""


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _aligned(
    gold: Mapping[str, Hashable], predicted: Mapping[str, Hashable | None]
) -> tuple[list[Hashable], list[Hashable]]:
    if set(gold) != set(predicted):
        missing = len(set(gold) - set(predicted))
        extra = len(set(predicted) - set(gold))
        raise LabelMismatch(
            f"gold and predicted must label the same items: {missing} only in gold, "
            f"{extra} only in predicted"
        )
    ids = sorted(gold)
    # None means "not grouped": give each such item a unique label so it stays alone.
    pred = [predicted[i] if predicted[i] is not None else ("__alone__", i) for i in ids]
    return [gold[i] for i in ids], pred


def bcubed(gold: Mapping[str, Hashable], predicted: Mapping[str, Hashable | None]) -> Scores:
    """B-cubed (Bagga & Baldwin 1998): per item, precision is the share of its predicted cluster
    that shares its gold label, recall the share of its gold cluster that it was grouped with;
    both averaged over items."""
    g, p = _aligned(gold, predicted)
    if not g:
        return Scores(1.0, 1.0, 1.0)
    joint = Counter(zip(g, p, strict=True))
    g_size = Counter(g)
    p_size = Counter(p)
    precision = sum(n * n / p_size[pl] for (_, pl), n in joint.items()) / len(g)
    recall = sum(n * n / g_size[gl] for (gl, _), n in joint.items()) / len(g)
    return Scores(precision, recall, _f1(precision, recall))


def pairwise(gold: Mapping[str, Hashable], predicted: Mapping[str, Hashable | None]) -> Scores:
    """Pairwise scores over all unordered pairs of items: a pair is positive when both items
    share a cluster. Precision is 1.0 when nothing is grouped (no predicted pairs)."""
    g, p = _aligned(gold, predicted)

    def pairs(n: int) -> int:
        return n * (n - 1) // 2

    joint = Counter(zip(g, p, strict=True))
    true_pos = sum(pairs(n) for n in joint.values())
    pred_pos = sum(pairs(n) for n in Counter(p).values())
    gold_pos = sum(pairs(n) for n in Counter(g).values())
    precision = true_pos / pred_pos if pred_pos else 1.0
    recall = true_pos / gold_pos if gold_pos else 1.0
    return Scores(precision, recall, _f1(precision, recall))


def clusters(labels: Mapping[str, Hashable | None]) -> list[list[str]]:
    """Group item ids by label (None items alone), each cluster and the list sorted."""
    out: dict[Hashable, list[str]] = defaultdict(list)
    for item, label in labels.items():
        out[label if label is not None else ("__alone__", item)].append(item)
    return sorted(sorted(members) for members in out.values())
