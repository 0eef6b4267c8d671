"""Events: articles about one real-world happening, found from their fingerprints.

1. Blocking: a MinHash of each article's most salient terms goes into MinHashLSH at a low
   threshold; only the pairs it proposes are ever scored, which keeps the work near-linear.
2. Verification: a proposed pair is an edge when the TF-IDF cosine of the two articles is at
   least JOIN_COSINE.
3. Decision: within each connected piece of that graph, complete-link agglomeration: two
   groups join only if *every* article of one is at least JOIN_COSINE-similar to every article
   of the other. Single link chains two earthquakes together through one article that mentions
   both; complete link needs the whole group to agree, so it does not drift.

Prior events enter step 3 as ready-made groups: new articles join them (or found new ones),
and two prior events join only when all their members agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from datetime import date
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

from dedupe.copies import UnionFind, candidates
from dedupe.fingerprint import Fingerprint, idf, map_chunks
from dedupe.minhash import Signer, word_hash

# Complete-link join threshold on TF-IDF cosine. Calibrated on ECB+ dev, cross-validated by
# topic halves (odd/even topics): B-cubed F1 peaks at 0.09-0.10 on both halves (0.934 and
# 0.923 at 0.09, 0.929 and 0.923 at 0.10), and falls off on both sides (0.88-0.90 at 0.06
# and 0.15). Complete link keeps this low threshold safe: a group needs all pairs above it.
JOIN_COSINE = 0.10
# Blocking: MinHash over the top BLOCK_TERMS terms (fingerprint.py). At threshold 0.1 with
# 128 permutations datasketch picks 64 bands of 2 rows: a pair sharing 10% of its top terms is
# proposed with probability 1 - (1 - 0.1^2)^64 = 0.47, sharing 20% with 0.93; an event needs
# only a spanning tree of proposed pairs, since the decision step scores all pairs of a piece.
# Two rows per band keep buckets small (a bucket needs two shared minimum terms). On ECB+ dev
# scoring all pairs instead gives B-cubed F1 0.921 vs 0.919 with this blocking (before the
# name and average rules), and 64 permutations at 0.2 (28 x 2) only 0.905.
BLOCK_THRESHOLD = 0.1
BLOCK_PERM = 128
BLOCK_SEED = 7
# Largest piece scored as a dense matrix (1,500^2 cosines, 18 MB). A larger piece is cut by
# raising its edge threshold until its pieces fit, so one crowded story cannot make the run
# quadratic.
MAX_PIECE = 1500

# Entity disagreement: two groups of at least MIN_NAMED members never join when each has a
# name of its own, a word of a named entity (IDF >= NAME_IDF, i.e. rarer than Zipf 3.5) used
# by >= CONSENSUS of its members and by <= ABSENT of the other's ("Rahman" vs "Thompson" in
# two Klitschko title fights). ECB+ dev B-cubed F1 at JOIN_COSINE 0.10: 0.919 without the
# rule; 0.914 with MIN_NAMED 2 (pairs name each other apart too easily), 0.926 with 3 or 4;
# CONSENSUS 0.7 gives 0.918, ABSENT 0.1 and 0.2 the same; NAME_IDF 3.0 0.907.
MIN_NAMED = 3
CONSENSUS = 0.8
ABSENT = 0.2
NAME_IDF = 4.0
# After complete link, groups whose *average* cross-pair cosine is >= AVG_JOIN join too (same
# name rule): complete link splits an event when one outlier pair is weak. ECB+ dev B-cubed
# F1 at JOIN_COSINE 0.10: 0.926 without; AVG_JOIN 0.15: 0.894, 0.2: 0.909, 0.25: 0.924,
# 0.3: 0.930 (odd/even topic halves 0.919/0.941), 0.35 and 0.4: 0.926. With 0.3 the F1 stays
# >= 0.92 from JOIN_COSINE 0.10 to 0.12 (0.930, 0.925, 0.921).
AVG_JOIN = 0.3
# Setting rules (class Setting), for events of one kind with the same actors, where names
# cannot tell them apart (the same two ministers in another city or year):
# - time: groups whose median principal dates (most-mentioned full date, else publication day)
#   are more than TIME_WINDOW days apart are two events. News mentions old dates freely and
#   ECB+ events run on for months of follow-ups, so the window is wide: on ECB+ dev (with the
#   place rule) B-cubed F1 is 0.926 without it, 0.914 at 365 days, 0.923 at 730 and 1095.
#   1095 (3 years) still parts the seeds' 2021 and 2025 Tokyo meetings (1,473 days apart).
# - place: each group's setting (the place named in a sentence that also gives the date, or
#   "virtual") differs, and neither group names the other's place as a place or twice in its
#   text. Seeds: Liverpool vs Tokyo vs virtual. ECB+ dev: 0.930 -> 0.926 (mostly venue vs city).
TIME_WINDOW = 1095
PLACE_VETO = True
# - publication time: groups whose members were published (median) more than
#   PUBLISHED_WINDOW days apart are two events. Write-ups of one happening appear within days
#   of it; the sample's same-kind meetings published 27 days apart (Liverpool, 2021-12-11, and
#   the virtual 2+2, 2022-01-07) must stay apart, and so must a wire story's recycled
#   background. ECB+ carries no publication dates, so this rule cannot move its score; 14 days
#   keeps a fortnight of follow-ups and analysis inside the event.
PUBLISHED_WINDOW = 14

# Near-linear candidate work: a band bucket of more than MAX_BUCKET documents (terms shared by
# a crowd) pairs only neighbours, and each document keeps at most MAX_EDGES edges. On the
# 20,000-document benchmark corpus the blocking proposed 808k pairs and 327k passed
# JOIN_COSINE before these caps; ECB+ dev (no bucket near 100, degrees below 30 for all but
# a few documents) scores the same with them.
MAX_BUCKET = 100
MAX_EDGES = 30
_COSINE_CHUNK = 20000
# Candidate pairs past which their cosines are computed in two forked processes: ~2.5 us a
# pair, so 100,000 pairs are ~0.25 s of work against ~0.05 s to fork the pool.
_PARALLEL_PAIRS = 100_000

_block_signer: Signer | None = None


def block_signer() -> Signer:
    global _block_signer
    if _block_signer is None:
        _block_signer = Signer(num_perm=BLOCK_PERM, seed=BLOCK_SEED)
    return _block_signer


def name_terms(fp: Fingerprint) -> frozenset[str]:
    """The words of a document that can name an event: rare words of its named entities."""
    return frozenset(
        w for e in fp.entities for w in e.lower().split() if w in fp.terms and idf(w) >= NAME_IDF
    )


def term_matrix(vectors: Sequence[dict[str, float]]) -> csr_matrix:
    """Rows = unit TF-IDF vectors; columns in sorted term order so sums are reproducible."""
    vocab = {t: i for i, t in enumerate(sorted({t for v in vectors for t in v}))}
    indptr = np.zeros(len(vectors) + 1, dtype=np.int64)
    np.cumsum([len(v) for v in vectors], out=indptr[1:])
    n = int(indptr[-1])
    indices = np.fromiter((vocab[t] for v in vectors for t in v), dtype=np.int64, count=n)
    data = np.fromiter((w for v in vectors for w in v.values()), dtype=np.float64, count=n)
    matrix = csr_matrix((data, indices, indptr), shape=(len(vectors), max(1, len(vocab))))
    # Each row's columns in ascending order, sorted in C: the same arrays as sorting every row
    # in Python did (0.36 -> 0.16 s for 6,000 documents), so every sum adds in the same order.
    matrix.sort_indices()
    return matrix


def block_signatures(block_terms: Sequence[Sequence[str]]) -> np.ndarray:
    signer = block_signer()
    return signer.sign_hashes(
        [np.array([word_hash(t) for t in terms], dtype=np.uint32) for terms in block_terms]
    )


def _cosine_range(job: tuple[csr_matrix, np.ndarray], start: int, stop: int) -> np.ndarray:
    matrix, pairs = job
    a = pairs[start:stop, 0]
    b = pairs[start:stop, 1]
    return np.asarray(matrix[a].multiply(matrix[b]).sum(axis=1)).ravel()


def _cosines(matrix: csr_matrix, pairs: np.ndarray) -> np.ndarray:
    """The dot product of rows a and b for each pair (a, b): their cosine, rows being unit
    vectors. In chunks: matrix[a] copies ~160 stored terms per pair, so all 800k candidate
    pairs of 20,000 documents at once took 1.5 GB. Past _PARALLEL_PAIRS the chunks are split
    over two forked processes (the same arithmetic per chunk, so the same values): ~1 s of the
    serial part of grouping 10,000 documents, with the other core idle."""
    parts = map_chunks(_cosine_range, (matrix, pairs), len(pairs), _COSINE_CHUNK,
                       parallel=len(pairs) >= _PARALLEL_PAIRS)
    return np.concatenate(parts) if parts else np.empty(0)


def candidate_edges(
    signatures: np.ndarray,
    matrix: csr_matrix,
    query: Sequence[int],
    storage_config: dict[str, Any] | None = None,
) -> list[tuple[int, int, float]]:
    """Proposed pairs (i, j, cosine) with cosine >= JOIN_COSINE; j in `query`."""
    signer = block_signer()
    pairs = candidates(
        signer, signatures, BLOCK_THRESHOLD, query, storage_config, "events", MAX_BUCKET
    )
    if not len(pairs):
        return []
    cos = _cosines(matrix, pairs)
    keep = cos >= JOIN_COSINE
    pairs, cos = pairs[keep], cos[keep]
    # Each document keeps its MAX_EDGES strongest edges: enough to connect it to its event
    # (the decision scores all pairs of a piece), and the graph stays linear in documents.
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -cos))
    # Plain lists in the loop: NumPy scalar indexing made it ~2 s on the 20k bench corpus.
    kept = np.zeros(len(pairs), dtype=bool)
    degree = [0] * matrix.shape[0]
    pair_list = pairs.tolist()
    for e in order.tolist():
        i, j = pair_list[e]
        if degree[i] < MAX_EDGES or degree[j] < MAX_EDGES:
            kept[e] = True
            degree[i] += 1
            degree[j] += 1
    return [
        (i, j, c) for (i, j), c in zip(pairs[kept].tolist(), cos[kept].tolist(), strict=True)
    ]


def _days(iso: str) -> int:
    return date.fromisoformat(iso).toordinal()


class Setting:
    """Where and when each group's members say the event happened: a group's place is the
    principal place most of its placed members name, its day the median of its members'
    principal dates. Two groups that disagree on either are two events."""

    def __init__(self, places: Sequence[Sequence[str]], days: Sequence[int | None], k: int,
                 labels: np.ndarray, words: Sequence[Collection[str]] | None = None,
                 published: Sequence[int | None] | None = None) -> None:
        self.published: list[list[int]] = [[] for _ in range(k)]
        self.places: list[Counter[str]] = [Counter() for _ in range(k)]
        self.mentioned: list[set[str]] = [set() for _ in range(k)]
        self.words: list[list[Collection[str]]] = [[] for _ in range(k)]
        self.days: list[list[int]] = [[] for _ in range(k)]
        for item, g in enumerate(labels):
            if places[item]:
                self.places[g][places[item][0]] += 1
                self.mentioned[g].update(places[item])
            if days[item] is not None:
                self.days[g].append(days[item])  # type: ignore[arg-type]
            if words is not None:
                self.words[g].append(words[item])
            if published is not None and published[item] is not None:
                self.published[g].append(published[item])  # type: ignore[arg-type]

    def _place(self, g: int) -> str | None:
        votes = self.places[g]
        if not votes:
            return None
        top, n = min(votes.items(), key=lambda kv: (-kv[1], kv[0]))
        return top if n * 2 > sum(votes.values()) else None

    def _day(self, g: int) -> float | None:
        return _median(self.days[g]) if self.days[g] else None

    def clash(self, a: int, b: int) -> bool:
        da, db = self._day(a), self._day(b)
        if da is not None and db is not None and abs(da - db) > TIME_WINDOW:
            return True
        if self.published[a] and self.published[b]:
            gap = abs(_median(self.published[a]) - _median(self.published[b]))
            if gap > PUBLISHED_WINDOW:
                return True
        pa, pb = self._place(a), self._place(b)
        # Each side's place is one the other side never mentions ("in Liverpool" vs "in
        # Tokyo"); a city/venue/country mix-up within one event usually shares a mention.
        return (
            PLACE_VETO
            and pa is not None
            and pb is not None
            and not self._mentions(b, pa)
            and not self._mentions(a, pb)
        )

    def _mentions(self, g: int, place: str) -> bool:
        if place in self.mentioned[g]:
            return True
        words = place.lower().split()
        return any(all(w in terms for w in words) for terms in self.words[g])

    def merge(self, a: int, b: int) -> None:
        self.places[a].update(self.places[b])
        self.mentioned[a].update(self.mentioned[b])
        self.words[a].extend(self.words[b])
        self.days[a].extend(self.days[b])
        self.published[a].extend(self.published[b])


def _median(values: Sequence[int]) -> float:
    """float(np.median(values)) for a short list of day ordinals, without NumPy's per-call
    overhead (~50 us; clash() called it 64,000 times on the 20k bench corpus). Ordinals are
    far below 2**52, so the middle pair's mean is exact either way."""
    s = sorted(values)
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def _distinct(inside: Counter[str], n_in: int, other: Counter[str], n_other: int) -> bool:
    """Does a group have its own name: a rare word nearly all its members use and nearly none
    of the other group's do?"""
    for term, count in inside.items():
        if count >= CONSENSUS * n_in and other.get(term, 0) <= ABSENT * n_other:
            return True
    return False


def complete_link(
    sim: np.ndarray,
    groups: Sequence[int],
    item_terms: Sequence[frozenset[str]] | None = None,
    item_places: Sequence[Sequence[str]] | None = None,
    item_days: Sequence[int | None] | None = None,
    item_words: Sequence[Collection[str]] | None = None,
    item_published: Sequence[int | None] | None = None,
) -> list[int]:
    """Agglomerate items whose initial group labels are `groups` (0..k-1, each group given as
    a run of items in order) while some two groups have all cross-pairs >= JOIN_COSINE and
    do not each have a name of their own (see `_distinct`; needs `item_terms`).
    Returns each item's final group, named by the smallest initial group in it."""
    labels = np.asarray(groups)
    k = int(labels.max()) + 1
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    # Group-by-group minimum similarity, from the item matrix.
    c = np.minimum.reduceat(np.minimum.reduceat(sim, starts, axis=0), starts, axis=1)
    np.fill_diagonal(c, -np.inf)
    final = np.arange(k)
    names: list[Counter[str]] = [Counter() for _ in range(k)]
    size = np.bincount(labels, minlength=k)
    if item_terms is not None:
        for item, g in enumerate(labels):
            names[g].update(item_terms[item])
    setting = Setting(
        item_places or [()] * len(labels), item_days or [None] * len(labels), k, labels,
        item_words, item_published,
    )
    # Each row's best partner, kept up to date so that a merge costs O(k), not O(k^2):
    # merging only lowers similarities, so only rows whose best was a or b need a rescan.
    best = c.argmax(axis=1)
    best_val = c[np.arange(k), best]

    def rescan(row: int) -> None:
        best[row] = int(np.argmax(c[row]))
        best_val[row] = c[row, best[row]]

    while k > 1:
        a = int(np.argmax(best_val))
        b = int(best[a])
        if best_val[a] < JOIN_COSINE:
            break
        if b < a:
            a, b = b, a
        if (
            item_terms is not None
            and min(size[a], size[b]) >= MIN_NAMED
            and _distinct(names[a], size[a], names[b], size[b])
            and _distinct(names[b], size[b], names[a], size[a])
        ) or setting.clash(a, b):
            # Two events of the same kind: each side has its own actor, place or time.
            c[a, b] = c[b, a] = -np.inf
            rescan(a)
            rescan(b)
            continue
        setting.merge(a, b)
        merged = np.minimum(c[a], c[b])
        c[a, :] = merged
        c[:, a] = merged
        c[a, a] = -np.inf
        c[b, :] = -np.inf
        c[:, b] = -np.inf
        best_val[b] = -np.inf
        final[final == b] = a
        names[a].update(names[b])
        size[a] += size[b]
        rescan(a)
        for row in np.flatnonzero((best == a) | (best == b)):
            if row != b:
                rescan(int(row))
    if AVG_JOIN < 1.0:
        _average_pass(sim, labels, final, names, size, item_terms is not None, setting)
    return [int(final[g]) for g in labels]


def _average_pass(
    sim: np.ndarray,
    labels: np.ndarray,
    final: np.ndarray,
    names: list[Counter[str]],
    size: np.ndarray,
    named: bool,
    setting: Setting,
) -> None:
    """Join complete-link groups whose average cross similarity is >= AVG_JOIN."""
    groups = sorted(set(int(g) for g in final[labels]))
    if len(groups) < 2:
        return
    index = {g: i for i, g in enumerate(groups)}
    member = np.array([index[int(final[g])] for g in labels])
    onehot = np.zeros((len(labels), len(groups)))
    onehot[np.arange(len(labels)), member] = 1.0
    total = onehot.T @ sim @ onehot
    count = onehot.sum(axis=0)
    while True:
        avg = total / np.outer(count, count)
        np.fill_diagonal(avg, -np.inf)
        flat = int(np.argmax(avg))
        a, b = divmod(flat, avg.shape[1])
        if avg[a, b] < AVG_JOIN:
            return
        if a > b:
            a, b = b, a
        ga, gb = groups[a], groups[b]
        if (
            named
            and min(size[ga], size[gb]) >= MIN_NAMED
            and _distinct(names[ga], size[ga], names[gb], size[gb])
            and _distinct(names[gb], size[gb], names[ga], size[ga])
        ):
            total[a, b] = total[b, a] = -np.inf
            continue
        if setting.clash(ga, gb):
            total[a, b] = total[b, a] = -np.inf
            continue
        setting.merge(ga, gb)
        total[a, :] += total[b, :]
        total[:, a] += total[:, b]
        total[b, :] = total[:, b] = 0.0
        count[a] += count[b]
        count[b] = np.inf
        final[final == gb] = ga
        names[ga].update(names[gb])
        size[ga] += size[gb]


def pieces(
    n_nodes: int, edges: Sequence[tuple[int, int, float]], sizes: Sequence[int]
) -> list[list[int]]:
    """Connected pieces of the node graph, each at most MAX_PIECE items in total (`sizes` =
    items per node); oversized pieces are re-cut on their stronger edges."""
    uf = UnionFind(n_nodes)
    for a, b, _ in edges:
        uf.union(a, b)
    by_root: dict[int, list[int]] = {}
    for node in range(n_nodes):
        by_root.setdefault(uf.find(node), []).append(node)
    out: list[list[int]] = []
    for nodes in by_root.values():
        if sum(sizes[n] for n in nodes) <= MAX_PIECE or len(nodes) == 1:
            out.append(nodes)
            continue
        inside = set(nodes)
        own = sorted(e for e in edges if e[0] in inside)
        # Raise the bar to the median edge of this piece and cut again.
        bar = float(np.median([e[2] for e in own]))
        stronger = [e for e in own if e[2] > bar]
        index = {n: i for i, n in enumerate(nodes)}
        sub = pieces(
            len(nodes),
            [(index[a], index[b], s) for a, b, s in stronger],
            [sizes[n] for n in nodes],
        )
        out.extend([nodes[i] for i in part] for part in sub)
    return out
