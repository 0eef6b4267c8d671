"""Events: articles about one real-world happening, found from their fingerprints.

1. Blocking: a MinHash of each article's most salient terms goes into MinHashLSH at a low
   threshold; only the pairs it proposes are ever scored, which keeps the work near-linear.
2. Verification: a proposed pair is an edge when its similarity (`Items.pair_similarity`:
   TF-IDF cosine, or for two really dated articles the dated similarity) is at least
   `settings.join`. An edge depends on its two articles alone.
3. Decision: within each connected piece of that graph, complete-link agglomeration: two
   groups join only if *every* article of one is at least `join`-similar to every article
   of the other. Single link chains two earthquakes together through one article that mentions
   both; complete link needs the whole group to agree, so it does not drift.

Step 3 depends on the piece alone, and a piece is a connected component of pair-decided
edges: grouping in runs re-decides exactly the pieces new articles touch (grouping.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from datetime import date
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

from dedupe.copies import UnionFind, candidates
from dedupe.fingerprint import Fingerprint, term_idf
from dedupe.minhash import Signer, WordHashes
from dedupe.parallel import map_chunks
from dedupe.people import PERSON_DAYS
from dedupe.settings import DEFAULT, GroupingSettings

# The thresholds and vetoes are in settings.GroupingSettings, with their calibration.

# Blocking: MinHash over the top BLOCK_TERMS terms (fingerprint.py). At threshold 0.05 with
# 128 permutations datasketch picks 32 bands of 1 row: a pair is proposed when one of 32
# min-hashes of its top terms agree, with probability 1 - (1 - 0.1)^32 = 0.97 for pairs
# sharing 10% of their top terms; an event needs only a spanning tree of proposed pairs,
# since the decision step scores all pairs of a piece, and NEIGHBOURS keeps a bucket of a
# common term from making candidates quadratic. Dev B-cubed F1 at 0.05 against 0.1 (64 bands
# of 2): GVA 0.888 against 0.875 (halves 0.893/0.900 against 0.880/0.889), ECB+ 0.927
# against 0.928; the dated stream's write-ups share fewer top terms than ECB+'s.
BLOCK_THRESHOLD = 0.05
BLOCK_PERM = 128
BLOCK_SEED = 7

# Near-linear candidate work: each document pairs with the NEIGHBOURS documents before it in
# each of its band buckets (canonical order: oldest first), so a bucket of a term shared by a
# crowd costs NEIGHBOURS pairs a member, not one per member pair. A pair depends on the bucket's
# members between its two documents, never on later ones: a stream cut into runs in
# publication order gets the pairs, and with them the events, of one batch (the 24-run GVA
# partition equals the batch's). Dev B-cubed F1 is the same at 15 as with every pair of
# buckets up to 100 (the rule before): ECB+ 0.927, GVA 0.891; `make bench` grouping rows show
# the cost.
NEIGHBOURS = 15

_block_signer: Signer | None = None


def block_signer() -> Signer:
    global _block_signer
    if _block_signer is None:
        _block_signer = Signer(num_perm=BLOCK_PERM, seed=BLOCK_SEED)
    return _block_signer


def entity_words(fp: Fingerprint, *min_idfs: float) -> tuple[frozenset[str], ...]:
    """For each of `min_idfs`, the words of a document's named entities (capitalised phrases)
    that are among its terms and at least that rare; the words are looked up once for all."""
    rarity = {}
    for e in fp.entities:
        for w in e.split():
            hit = term_idf(w)
            if hit is not None and hit[0] in fp.terms and hit[0] not in rarity:
                rarity[hit[0]] = hit[1]
    return tuple(frozenset(w for w, r in rarity.items() if r >= m) for m in min_idfs)


def term_matrix(vectors: Sequence[dict[str, float]]) -> csr_matrix:
    """Rows = unit TF-IDF vectors; columns in sorted term order so sums are reproducible."""
    vocab = {t: i for i, t in enumerate(sorted({t for v in vectors for t in v}))}
    indptr = np.zeros(len(vectors) + 1, dtype=np.int64)
    np.cumsum([len(v) for v in vectors], out=indptr[1:])
    n = int(indptr[-1])
    indices = np.fromiter((vocab[t] for v in vectors for t in v), dtype=np.int64, count=n)
    data = np.fromiter((w for v in vectors for w in v.values()), dtype=np.float64, count=n)
    matrix = csr_matrix((data, indices, indptr), shape=(len(vectors), max(1, len(vocab))))
    # Each row's columns in ascending order, sorted in C, so every sum adds in the same order.
    matrix.sort_indices()
    return matrix


def entity_vector(terms: dict[str, float], entities: Collection[str]) -> dict[str, float]:
    """The TF-IDF vector restricted to entity words, unit length (empty when it has none)."""
    sub = {t: w for t, w in terms.items() if t in entities}
    norm = float(np.sqrt(sum(w * w for w in sub.values())))
    return {t: w / norm for t, w in sub.items()} if norm else {}


# Block terms are the rare words of the stream, seen again and again: each is hashed once,
# up to a bound that keeps a process serving runs for months from growing without end.
_block_word_hashes = WordHashes()
_MAX_CACHED_WORDS = 1_000_000


def block_signatures(block_terms: Sequence[Sequence[str]]) -> np.ndarray:
    signer = block_signer()
    hashes = _block_word_hashes
    if len(hashes) > _MAX_CACHED_WORDS:
        hashes.clear()
    return signer.sign_hashes(
        [np.fromiter((hashes[t] for t in terms), dtype=np.uint32, count=len(terms))
         for terms in block_terms]
    )


class Items:
    """The items being grouped, as matrices: unit TF-IDF rows, unit entity rows, and each
    item's real publication day (day ordinal; -1 when undated or the date was a guess)."""

    def __init__(
        self,
        terms: Sequence[dict[str, float]],
        entities: Sequence[dict[str, float]],
        days: Sequence[int | None],
        settings: GroupingSettings = DEFAULT,
        people: Sequence[Collection[str]] | None = None,
        weekdays: Sequence[Collection[int]] | None = None,
    ) -> None:
        self.terms = term_matrix(terms)
        self.entities = term_matrix(entities)
        self.days = np.array([-1 if d is None else d for d in days], dtype=np.int64)
        self.settings = settings
        # One column per person named with an age (fingerprint.people); a row's dot product
        # with another's is how many people the two name alike.
        self.people = term_matrix(
            [dict.fromkeys(p, 1.0) for p in people] if people is not None
            else [{} for _ in days]
        )
        # The days a really dated report says things happened on: each weekday it names, as
        # the latest such day up to its publication day (none for an undated report).
        self.when = term_matrix([
            {str(d - (d - 1 - w) % 7): 1.0 for w in named} if d is not None and d >= 0 else {}
            for d, named in zip(days, weekdays if weekdays is not None else [()] * len(days),
                                strict=True)
        ])
        self.has_when = np.diff(self.when.indptr) > 0

    def __len__(self) -> int:
        return int(self.terms.shape[0])

    def _adjust(self, cos: np.ndarray, ent: np.ndarray, da: np.ndarray, db: np.ndarray,
                shared: np.ndarray, days_apart: np.ndarray) -> np.ndarray:
        s = self.settings
        dated = (da >= 0) & (db >= 0)
        gap = np.abs(da - db)
        far = gap > s.near_days
        if s.person_link:
            # The same person with the same age in both: the gap is a follow-up's, not
            # evidence of another event.
            far &= (shared <= 0) | (gap > PERSON_DAYS)
        adjusted = s.dated_mix * cos + (1.0 - s.dated_mix) * ent - s.dated_offset
        adjusted = np.where(far, adjusted - s.far_penalty, adjusted - s.weekday_clash * days_apart)
        return np.where(dated, adjusted, cos)

    def _days_apart(self, a: np.ndarray, b: np.ndarray, agree: np.ndarray) -> np.ndarray:
        """1.0 where both reports name weekdays and no day they name is the same, else 0."""
        return (self.has_when[a] & self.has_when[b] & (agree <= 0)).astype(np.float64)

    def pair_similarity(self, pairs: np.ndarray) -> np.ndarray:
        """Similarity of each pair (a, b) of item indices; a function of the two items alone."""
        return map_chunks_similarity(self, pairs)

    def dense_similarity(self, idx: Sequence[int]) -> np.ndarray:
        """The similarity matrix of the items `idx` (diagonal included, as computed)."""
        t = self.terms[idx]
        cos = (t @ t.T).toarray()
        rows = np.asarray(idx, dtype=np.int64)
        if np.count_nonzero(self.days[rows] >= 0) < 2:
            # No two dated items: every pair keeps plain cosine (the diagonal of one dated
            # item is never read, since only two dated groups compare centroids).
            return cos
        e = self.entities[idx]
        ent = (e @ e.T).toarray()
        shared = _dense_dots(self.people, rows)
        apart = self._days_apart(rows[:, None], rows[None, :], _dense_dots(self.when, rows))
        days = self.days[rows]
        return self._adjust(cos, ent, days[:, None], days[None, :], shared, apart)


def _similarity_range(job: tuple[Items, np.ndarray], start: int, stop: int) -> np.ndarray:
    items, pairs = job
    a = pairs[start:stop, 0]
    b = pairs[start:stop, 1]
    cos = np.asarray(items.terms[a].multiply(items.terms[b]).sum(axis=1)).ravel()
    # Only a pair of two really dated items reads entities, people and weekdays; an undated
    # stream (or an undated pair in a dated one) skips those dot products.
    dated = np.flatnonzero((items.days[a] >= 0) & (items.days[b] >= 0))
    if not len(dated):
        return cos
    a, b = a[dated], b[dated]
    ent = np.asarray(items.entities[a].multiply(items.entities[b]).sum(axis=1)).ravel()
    shared = _row_dots(items.people, a, b)
    apart = items._days_apart(a, b, _row_dots(items.when, a, b))
    cos[dated] = items._adjust(cos[dated], ent, items.days[a], items.days[b], shared, apart)
    return cos


def _dense_dots(matrix: csr_matrix, rows: np.ndarray) -> np.ndarray:
    """The dot products of matrix's `rows` with each other; most pieces name no person."""
    sub = matrix[rows]
    if not sub.nnz:
        return np.zeros((len(rows), len(rows)))
    return (sub @ sub.T).toarray()


def _row_dots(matrix: csr_matrix, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """matrix[a] . matrix[b] row by row, computed only where both rows have entries (people
    and weekdays are few: most pairs have none on one side)."""
    out = np.zeros(len(a))
    filled = np.diff(matrix.indptr) > 0
    both = filled[a] & filled[b]
    if both.any():
        out[both] = np.asarray(matrix[a[both]].multiply(matrix[b[both]]).sum(axis=1)).ravel()
    return out


_CHUNK = 20000
# Candidate pairs past which similarities are computed in two forked processes: below it the
# fork costs more than it saves (the benchmark's grouping rows show both sides).
_PARALLEL_PAIRS = 100_000


def map_chunks_similarity(items: Items, pairs: np.ndarray) -> np.ndarray:
    """Similarities of candidate pairs in chunks (matrix[a] copies ~160 stored terms per pair:
    all pairs at once would hold them all), over two forked processes past _PARALLEL_PAIRS;
    each chunk's arithmetic is the same either way."""
    parts = map_chunks(_similarity_range, (items, pairs), len(pairs), _CHUNK,
                       parallel=len(pairs) >= _PARALLEL_PAIRS)
    return np.concatenate(parts) if parts else np.empty(0)


def candidate_edges(
    signatures: np.ndarray,
    items: Items,
    query: Sequence[int],
    storage_config: dict[str, Any] | None = None,
) -> list[tuple[int, int, float]]:
    """Proposed pairs (i, j, similarity) with similarity >= settings.join; i or j in `query`."""
    pairs = candidates(
        block_signer(), signatures, BLOCK_THRESHOLD, query, storage_config, "events", NEIGHBOURS
    )
    if not len(pairs):
        return []
    sim = items.pair_similarity(pairs)
    keep = sim >= items.settings.join
    return list(zip(pairs[keep, 0].tolist(), pairs[keep, 1].tolist(), sim[keep].tolist(),
                    strict=True))


def _days(iso: str) -> int:
    return date.fromisoformat(iso).toordinal()


class Setting:
    """Where and when each group's members say the event happened: a group's place is the
    principal place most of its placed members name, its day the median of its members'
    principal dates. Two groups that disagree on either are two events."""

    def __init__(self, places: Sequence[Sequence[str]], days: Sequence[int | None], k: int,
                 labels: np.ndarray, words: Sequence[Collection[str]] | None = None,
                 published: Sequence[int | None] | None = None,
                 settings: GroupingSettings = DEFAULT,
                 people: Sequence[Collection[str]] | None = None) -> None:
        self.settings = settings
        self.people: list[set[str]] = [set() for _ in range(k)]
        self.published: list[list[int]] = [[] for _ in range(k)]
        self.places: list[Counter[str]] = [Counter() for _ in range(k)]
        self.mentioned: list[set[str]] = [set() for _ in range(k)]
        self.words: list[list[Collection[str]]] = [[] for _ in range(k)]
        self.days: list[list[int]] = [[] for _ in range(k)]
        for item, g in enumerate(labels):
            if places[item]:
                self.places[g][places[item][0]] += 1
                self.mentioned[g].update(places[item])
            day = days[item]
            if day is not None:
                self.days[g].append(day)
            if words is not None:
                self.words[g].append(words[item])
            if published is not None:
                when = published[item]
                if when is not None:
                    self.published[g].append(when)
            if people is not None:
                self.people[g].update(people[item])

    def _place(self, g: int) -> str | None:
        votes = self.places[g]
        if not votes:
            return None
        top, n = min(votes.items(), key=lambda kv: (-kv[1], kv[0]))
        return top if n * 2 > sum(votes.values()) else None

    def _day(self, g: int) -> float | None:
        return _median(self.days[g]) if self.days[g] else None

    def clash(self, a: int, b: int) -> bool:
        s = self.settings
        da, db = self._day(a), self._day(b)
        if da is not None and db is not None and abs(da - db) > s.time_window:
            return True
        if self.published[a] and self.published[b]:
            gap = abs(_median(self.published[a]) - _median(self.published[b]))
            if gap > s.published_window and not (gap <= PERSON_DAYS and self._same_person(a, b)):
                return True
        pa, pb = self._place(a), self._place(b)
        # Each side's place is one the other side never mentions ("in Liverpool" vs "in
        # Tokyo"); a city/venue/country mix-up within one event usually shares a mention.
        return (
            s.place_veto
            and pa is not None
            and pb is not None
            and not self._mentions(b, pa)
            and not self._mentions(a, pb)
        )

    def _same_person(self, a: int, b: int) -> bool:
        """Do both groups name one person with one age (a follow-up's link across weeks)?"""
        return self.settings.person_link and not self.people[a].isdisjoint(self.people[b])

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
        self.people[a].update(self.people[b])


def _median(values: Sequence[int]) -> float:
    """float(np.median(values)) for a short list of day ordinals, without NumPy's per-call
    overhead (clash() runs once per candidate merge). Ordinals are far below 2**52, so the
    middle pair's mean is exact either way."""
    s = sorted(values)
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


class _Names:
    """Each group's rare entity words with their member counts, for the name veto."""

    def __init__(self, item_terms: Sequence[frozenset[str]] | None, labels: np.ndarray, k: int,
                 settings: GroupingSettings) -> None:
        self.active = item_terms is not None
        self.settings = settings
        self.counts: list[Counter[str]] = [Counter() for _ in range(k)]
        if item_terms is not None:
            for item, g in enumerate(labels):
                self.counts[g].update(item_terms[item])

    def _distinct(self, a: int, size_a: int, b: int, size_b: int) -> bool:
        """Does group a have its own name: a rare word nearly all its members use and nearly
        none of group b's do?"""
        s = self.settings
        other = self.counts[b]
        return any(
            count >= s.consensus * size_a and other.get(term, 0) <= s.absent * size_b
            for term, count in self.counts[a].items()
        )

    def apart(self, a: int, b: int, size: np.ndarray) -> bool:
        return (
            self.active
            and min(size[a], size[b]) >= self.settings.min_named
            and self._distinct(a, int(size[a]), b, int(size[b]))
            and self._distinct(b, int(size[b]), a, int(size[a]))
        )

    def merge(self, a: int, b: int) -> None:
        self.counts[a].update(self.counts[b])


def complete_link(
    sim: np.ndarray,
    groups: Sequence[int],
    item_terms: Sequence[frozenset[str]] | None = None,
    item_places: Sequence[Sequence[str]] | None = None,
    item_days: Sequence[int | None] | None = None,
    item_words: Sequence[Collection[str]] | None = None,
    item_published: Sequence[int | None] | None = None,
    settings: GroupingSettings = DEFAULT,
    item_people: Sequence[Collection[str]] | None = None,
) -> list[int]:
    """Agglomerate items whose initial group labels are `groups` (0..k-1, each group given as
    a run of items in order) while some two groups have all cross-pairs >= settings.join and
    neither the name veto (`_Names`, needs `item_terms`) nor the setting veto (`Setting`)
    parts them. Returns each item's final group, named by the smallest initial group in it."""
    labels = np.asarray(groups)
    k = int(labels.max()) + 1
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    # Group-by-group minimum similarity, from the item matrix.
    c = np.minimum.reduceat(np.minimum.reduceat(sim, starts, axis=0), starts, axis=1)
    np.fill_diagonal(c, -np.inf)
    final = np.arange(k)
    size = np.bincount(labels, minlength=k)
    names = _Names(item_terms, labels, k, settings)
    setting = Setting(
        item_places or [()] * len(labels), item_days or [None] * len(labels), k, labels,
        item_words, item_published, settings, item_people,
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
        if best_val[a] < settings.join:
            break
        if b < a:
            a, b = b, a
        if names.apart(a, b, size) or setting.clash(a, b):
            # Two events of the same kind: each side has its own actor, place or time.
            c[a, b] = c[b, a] = -np.inf
            rescan(a)
            rescan(b)
            continue
        setting.merge(a, b)
        names.merge(a, b)
        merged = np.minimum(c[a], c[b])
        c[a, :] = merged
        c[:, a] = merged
        c[a, a] = -np.inf
        c[b, :] = -np.inf
        c[:, b] = -np.inf
        best_val[b] = -np.inf
        final[final == b] = a
        size[a] += size[b]
        rescan(a)
        for row in np.flatnonzero((best == a) | (best == b)):
            if row != b:
                rescan(int(row))
    _average_pass(sim, labels, final, names, size, setting, settings)
    return [int(final[g]) for g in labels]


def _average_pass(
    sim: np.ndarray,
    labels: np.ndarray,
    final: np.ndarray,
    names: _Names,
    size: np.ndarray,
    setting: Setting,
    settings: GroupingSettings,
) -> None:
    """Join complete-link groups that agree on the whole, if not pair by pair: two groups
    with real publication dates when their centroids' cosine is >= settings.dated_centroid,
    others when their average cross similarity is >= settings.avg_join; the most agreeing
    pair first (by its margin over its bar), and the same vetoes as complete link."""
    groups = sorted(set(int(g) for g in final[labels]))
    if len(groups) < 2:
        return
    index = {g: i for i, g in enumerate(groups)}
    member = np.array([index[int(final[g])] for g in labels])
    onehot = np.zeros((len(labels), len(groups)))
    onehot[np.arange(len(labels)), member] = 1.0
    # total[a, b]: the sum of the similarities between group a's and group b's members, so
    # total[a, a] is the squared length of a's centroid (the sum of its members' vectors).
    total = onehot.T @ sim @ onehot
    count = onehot.sum(axis=0)
    dated = np.array([bool(setting.published[g]) for g in groups])
    alive = np.ones(len(groups), dtype=bool)
    vetoed = np.zeros((len(groups), len(groups)), dtype=bool)
    while True:
        length = np.sqrt(np.clip(np.diag(total), 1e-9, None))
        margin = np.where(
            dated[:, None] & dated[None, :],
            total / np.outer(length, length) - settings.dated_centroid,
            total / np.outer(count, count) - settings.avg_join,
        )
        margin[~(alive[:, None] & alive[None, :]) | vetoed] = -np.inf
        np.fill_diagonal(margin, -np.inf)
        a, b = divmod(int(np.argmax(margin)), margin.shape[1])
        if margin[a, b] < 0:
            return
        if a > b:
            a, b = b, a
        ga, gb = groups[a], groups[b]
        if names.apart(ga, gb, size) or setting.clash(ga, gb):
            vetoed[a, b] = vetoed[b, a] = True
            continue
        setting.merge(ga, gb)
        names.merge(ga, gb)
        total[a, :] += total[b, :]
        total[:, a] += total[:, b]
        count[a] += count[b]
        dated[a] |= dated[b]
        alive[b] = False
        final[final == gb] = ga
        size[ga] += size[gb]


def pieces(
    n_nodes: int, edges: Sequence[tuple[int, int, float]], max_piece: int
) -> list[list[int]]:
    """Connected pieces of the graph, each at most `max_piece` nodes; an oversized piece is
    re-cut on its stronger edges (above its median edge) until its pieces fit. Each piece is
    sorted, and the result depends only on the edges, not on their order."""
    uf = UnionFind(n_nodes)
    for a, b, _ in edges:
        uf.union(a, b)
    by_root: dict[int, list[int]] = {}
    for node in range(n_nodes):
        by_root.setdefault(uf.find(node), []).append(node)
    out: list[list[int]] = []
    for nodes in by_root.values():
        if len(nodes) <= max_piece:
            out.append(nodes)
            continue
        inside = set(nodes)
        own = sorted(e for e in edges if e[0] in inside)
        bar = float(np.median([e[2] for e in own]))
        stronger = [e for e in own if e[2] > bar]
        index = {n: i for i, n in enumerate(nodes)}
        sub = pieces(len(nodes), [(index[a], index[b], s) for a, b, s in stronger], max_piece)
        out.extend([nodes[i] for i in part] for part in sub)
    return out
