"""Copies: documents whose word shingles mostly coincide (the same text re-posted or syndicated,
possibly inside another outlet's page chrome). MinHashLSH proposes candidate pairs, the
signatures verify them, and connected groups of verified pairs are copy groups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from datasketch import MinHashLSH

from dedupe.minhash import Signer, band_pairs

# A pair is a copy when its estimated shingle Jaccard is at least 0.5, or when the smaller
# text is nearly all inside the larger one (containment >= 0.9, e.g. an article re-posted with
# a long header and footer of another outlet's chrome, or cut after a few paragraphs).
# The plain baseline (LSH at 0.8, no verification) misses copies wrapped in chrome: a 300-word
# article plus 150 words of chrome has Jaccard ~ 300/450 = 0.67. Calibrated on the benchmark
# corpus (bench/make_corpus.py, 20,000 docs), copy-group B-cubed F1 by (Jaccard, containment):
# (0.5, 0.8) 0.978, (0.5, 0.9) 0.985, (0.5, none) 0.986, (0.45, 0.9) 0.983, (0.55, 0.85) 0.981,
# (0.45, 0.7) 0.959; lower containment merges excerpts (a short piece mostly quoted from a
# longer one). 0.9 is kept for truncated copies, which Jaccard alone misses.
COPY_JACCARD = 0.5
COPY_CONTAINMENT = 0.9
# LSH threshold below both rules (containment 0.8 of a text twice as long is Jaccard
# 0.8 * 1 / (1 + 2 - 0.8) = 0.36), so the candidates include every pair the rules can accept.
LSH_THRESHOLD = 0.3


def lsh_storage(storage_config: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    """datasketch's storage_config for one of grouping's LSH indexes: None keeps the buckets
    in memory; a config with a `basename` gets `:name` appended so that the copy and event
    indexes of one call never share keys."""
    if storage_config is None:
        return None
    if "basename" not in storage_config:
        return storage_config
    return {**storage_config, "basename": storage_config["basename"] + b":" + name.encode()}


# In memory, each member of a band bucket pairs with this many members before it (see
# minhash.band_pairs): 500 identical texts still form one connected group, and a crowd
# cannot make candidate counts quadratic.
NEIGHBOURS = 50


def candidates(
    signer: Signer,
    signatures: np.ndarray,
    threshold: float,
    query: Sequence[int],
    storage_config: dict[str, Any] | None,
    name: str,
    neighbours: int = NEIGHBOURS,
) -> np.ndarray:
    """LSH candidate pairs (i, j), i < j, with j or i in `query`, as an (n, 2) int64 array in
    (i, j) order. Without storage_config the banding runs in NumPy (band_pairs: the pairs
    datasketch's in-memory index gives, for the same bands and rows); with one, datasketch's
    MinHashLSH on that storage (e.g. Redis)."""
    lsh = MinHashLSH(
        threshold=threshold, num_perm=signer.num_perm,
        storage_config=lsh_storage(storage_config, name),
    )
    if storage_config is None:
        mask = np.zeros(len(signatures), dtype=bool)
        mask[list(query)] = True
        # Already unique and in (i, j) order; callers compute on the array (a list of tuples
        # and back cost ~0.3 s for the 400,000 event candidates of 10,000 documents).
        return band_pairs(signatures, lsh.b, lsh.r, mask, neighbours)
    lean = [signer.to_datasketch(row) for row in signatures]
    with lsh.insertion_session() as session:
        for i, m in enumerate(lean):
            session.insert(i, m, check_duplication=False)
    new = frozenset(query)
    out = set()
    for j in query:
        for i in lsh.query(lean[j]):
            # A new-new pair is found from both sides; keep it once.
            if i == j or (i > j and i in new):
                continue
            out.add((min(i, j), max(i, j)))
    return np.array(sorted(out), dtype=np.int64).reshape(-1, 2)


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # The smaller index becomes the root: callers order documents oldest first.
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra


def copy_score(sig_a: np.ndarray, sig_b: np.ndarray, size_a: int, size_b: int) -> float:
    """Estimated Jaccard if the pair is a copy by either rule, else 0.0."""
    jaccard = float(np.count_nonzero(sig_a == sig_b)) / len(sig_a)
    if jaccard >= COPY_JACCARD:
        return jaccard
    # |A & B| = J (|A| + |B|) / (1 + J); containment = |A & B| / min(|A|, |B|).
    inter = jaccard * (size_a + size_b) / (1.0 + jaccard)
    if size_a and size_b and inter / min(size_a, size_b) >= COPY_CONTAINMENT:
        return jaccard
    return 0.0


def copy_pairs(
    signer: Signer,
    signatures: np.ndarray,
    sizes: Sequence[int],
    query: Sequence[int],
    storage_config: dict[str, Any] | None = None,
) -> list[tuple[int, int, float]]:
    """Verified copy pairs (i, j, jaccard) with i < j, where j is in `query` (the new
    documents) and i is any document (new or prior). Rows of `signatures` are oldest first."""
    pairs = candidates(signer, signatures, LSH_THRESHOLD, query, storage_config, "copies")
    if not len(pairs):
        return []
    # copy_score for all candidates at once, in chunks.
    size = np.asarray(sizes, dtype=np.float64)
    out: list[tuple[int, int, float]] = []
    for start in range(0, len(pairs), 50000):
        a = pairs[start : start + 50000, 0]
        b = pairs[start : start + 50000, 1]
        jac = np.count_nonzero(signatures[a] == signatures[b], axis=1) / signatures.shape[1]
        inter = jac * (size[a] + size[b]) / (1.0 + jac)
        smaller = np.maximum(np.minimum(size[a], size[b]), 1.0)
        ok = (jac >= COPY_JACCARD) | (inter / smaller >= COPY_CONTAINMENT)
        out += zip(a[ok].tolist(), b[ok].tolist(), jac[ok].tolist(), strict=True)
    return sorted(out)
