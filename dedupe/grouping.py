"""`group`: place new documents into copy groups and events, given what earlier runs kept.

Order of work for one call:
1. too-short texts are set aside (rule "too_short", never grouped);
2. copies: MinHash signatures, LSH candidates among new and prior documents, verified,
   connected groups (copies.py); a prior copy group keeps its id;
3. events: one representative per copy group (its oldest member) is clustered with the
   prior events (events.py); copies follow their representative (rule "copy");
4. ids: a new group is named after its oldest member (a content hash of its doc_id); when
   prior groups merge, the one whose oldest member is oldest keeps its id, the others become
   aliases.

"Oldest" is the canonical order: publication time (UTC; undated last), then doc_id. All work
runs in that order, so the same documents in any input order give the same grouping.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from dedupe import events as ev
from dedupe.copies import UnionFind, copy_pairs
from dedupe.fingerprint import BLOCK_TERMS, Fingerprint, fingerprint_many, map_chunks
from dedupe.minhash import NUM_PERM, SEED, Signer
from dedupe.records import Assignment, DocState, Document, Event, Grouping
from dedupe.text import MIN_WORDS, SHINGLE_SIZE, words

PAYLOAD_VERSION = 2
CANONICAL_RULE = "earliest_published"  # the event's oldest member in canonical order


class PayloadError(ValueError):
    """A DocState payload that dedupe cannot read (other version or corrupt)."""


@dataclass
class _Doc:
    """Everything grouping knows of one document, new or from a prior run."""

    doc_id: str
    key: tuple[str, str]
    signature: np.ndarray
    n_shingles: int
    terms: dict[str, float]
    headline: str
    source: str
    published_at: datetime | None
    dates: tuple[str, ...]
    places: tuple[str, ...]
    names: frozenset[str] = frozenset()
    setting: str | None = None
    repeated: frozenset[str] = frozenset()
    prior_event: str | None = None
    prior_copy: str | None = None
    is_new: bool = True
    copy_id: str | None = None
    event_id: str | None = None
    rule: str = ""
    similarity: float = 0.0
    matched: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _key(doc_id: str, published_at: datetime | None) -> tuple[str, str]:
    ts = _utc(published_at)
    # "~" sorts after every ISO timestamp: undated documents count as the newest.
    return (ts.isoformat() if ts else "~", doc_id)


def _hash_id(prefix: str, doc_id: str) -> str:
    return prefix + hashlib.sha1(doc_id.encode("utf-8")).hexdigest()[:16]


def _headline(doc: Document) -> str:
    if doc.title.strip():
        return doc.title.strip()[:200]
    for line in doc.text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def _source(doc: Document) -> str:
    if doc.source:
        return doc.source
    return urlsplit(doc.url).hostname or "" if doc.url else ""


def _payload(d: _Doc, signer: Signer) -> bytes:
    body = {
        "v": PAYLOAD_VERSION,
        "seed": signer.seed,
        "num_perm": signer.num_perm,
        "sig": base64.b64encode(d.signature.astype("<u4").tobytes()).decode("ascii"),
        "n_shingles": d.n_shingles,
        # Terms as one tab-joined string and their weights as float64 bytes: exact, and
        # several times faster to write and read than a JSON object of floats.
        "terms": "\t".join(d.terms),
        "weights": base64.b64encode(
            np.fromiter(d.terms.values(), np.float64, len(d.terms)).tobytes()
        ).decode("ascii"),
        "headline": d.headline,
        "source": d.source,
        "published_at": d.published_at.isoformat() if d.published_at else None,
        "dates": list(d.dates),
        "places": list(d.places),
        "names": sorted(d.names),
        "setting": d.setting,
        "repeated": sorted(d.repeated),
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


_SHORT_PAYLOAD = json.dumps({"v": PAYLOAD_VERSION, "too_short": True}).encode("utf-8")


def _from_state(state: DocState, signer: Signer) -> _Doc | None:
    try:
        body = json.loads(state.payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PayloadError(f"payload of {state.doc_id!r} is not dedupe JSON: {err}") from err
    if body.get("v") != PAYLOAD_VERSION:
        raise PayloadError(
            f"payload of {state.doc_id!r} has version {body.get('v')!r}, expected "
            f"{PAYLOAD_VERSION}: re-run grouping over those documents to rebuild their state"
        )
    if body.get("too_short"):
        return None
    if body["seed"] != signer.seed or body["num_perm"] != signer.num_perm:
        raise PayloadError(
            f"payload of {state.doc_id!r} was signed with seed={body['seed']}, "
            f"num_perm={body['num_perm']}; this run uses seed={signer.seed}, "
            f"num_perm={signer.num_perm}"
        )
    published = datetime.fromisoformat(body["published_at"]) if body["published_at"] else None
    return _Doc(
        doc_id=state.doc_id,
        key=_key(state.doc_id, published),
        signature=np.frombuffer(base64.b64decode(body["sig"]), dtype="<u4").astype(np.uint32),
        n_shingles=int(body["n_shingles"]),
        terms=_terms(body["terms"], body["weights"]),
        headline=body["headline"],
        source=body["source"],
        published_at=published,
        dates=tuple(body["dates"]),
        places=tuple(body["places"]),
        names=frozenset(body["names"]),
        setting=body["setting"],
        repeated=frozenset(body["repeated"]),
        prior_event=state.event_id,
        prior_copy=state.copy_id,
        is_new=False,
        copy_id=state.copy_id,
        event_id=state.event_id,
    )


def _terms(joined: str, weights: str) -> dict[str, float]:
    if not joined:
        return {}
    values = np.frombuffer(base64.b64decode(weights), dtype=np.float64).tolist()
    return dict(zip(joined.split("\t"), values, strict=True))


# Below this many documents shingling and signing stay in this process (a fork pool costs
# ~0.1 s to start; 2,000 documents are ~1 s of that work). Chunks of 500: the 20k bench corpus
# is 40 tasks, so the two workers end within one chunk (~0.25 s) of each other.
_PARALLEL_MIN = 2000
_CHUNK = 500

_Hashed = tuple[np.ndarray, np.ndarray] | None  # (shingle hashes, signature); None: too short


def _hash_range(
    job: tuple[Sequence[Document], Signer], start: int, stop: int
) -> list[_Hashed]:
    docs, signer = job
    out: list[_Hashed] = []
    for d in docs[start:stop]:
        tokens = words(d.text)
        if len(tokens) < MIN_WORDS:
            out.append(None)
            continue
        h = signer.shingle_hashes(words(d.title) + tokens if d.title else tokens, SHINGLE_SIZE)
        out.append((h, signer.sign_hashes([h])[0]))
    return out


def _hash_docs(docs: Sequence[Document], signer: Signer) -> list[_Hashed]:
    """Shingle hashes and MinHash signature of each document (None when it is too short), in
    order; large batches are split over two forked processes. Each result depends on its
    document alone, so the split does not change it."""
    parts = map_chunks(
        _hash_range, (docs, signer), len(docs), _CHUNK, parallel=len(docs) >= _PARALLEL_MIN
    )
    return [r for part in parts for r in part]


def _new_docs(
    docs: Sequence[Document], hashes: dict[str, tuple[np.ndarray, np.ndarray]]
) -> list[_Doc]:
    if not docs:
        return []
    shingle_hashes = []
    sigs = []
    for d in docs:
        h, sig = hashes.pop(d.doc_id)
        shingle_hashes.append(h)
        sigs.append(sig)
    out = []
    for i, d in enumerate(docs):
        doc = _Doc(
            doc_id=d.doc_id,
            key=_key(d.doc_id, d.published_at),
            signature=sigs[i],
            # Shingle positions, not distinct shingles: repeats are rare in prose and only
            # feed the containment estimate; np.unique per document cost 15% of the run.
            n_shingles=len(shingle_hashes[i]),
            terms={},
            headline=_headline(d),
            source=_source(d),
            published_at=_utc(d.published_at),
            dates=(),
            places=(),
        )
        doc.extra["document"] = d
        out.append(doc)
    return out


def _fingerprint(docs: Sequence[_Doc]) -> None:
    """Fill in the event fingerprints. Only each copy group's oldest member needs one (copies
    follow it), so this runs after copies are known: on a feed where half the documents are
    copies that halves the slowest per-document step. The batch is fingerprinted at once so
    that a large one can be split over processes (fingerprint_many)."""
    todo: list[tuple[_Doc, Document]] = []
    for doc in docs:
        d = doc.extra.get("document")
        if isinstance(d, Document) and not doc.terms:
            todo.append((doc, d))
    fps = fingerprint_many([(d.text, d.title) for _, d in todo])
    for (doc, _), fp in zip(todo, fps, strict=True):
        _set_fingerprint(doc, fp)


def _set_fingerprint(doc: _Doc, fp: Fingerprint) -> None:
    doc.terms = fp.terms
    doc.dates = fp.dates
    doc.places = fp.places
    doc.names = ev.name_terms(fp)
    doc.setting = fp.setting
    doc.repeated = fp.repeated & fp.terms.keys()


def group(
    docs: Sequence[Document],
    prior: Sequence[DocState] = (),
    *,
    storage_config: dict[str, Any] | None = None,
) -> Grouping:
    """Group `docs` into copies and events, continuing from `prior` (the `states` earlier calls
    returned). See the module docstring for the steps and the id rules. `storage_config` is
    datasketch's MinHashLSH storage (e.g. Redis); None keeps the LSH buckets in memory. The
    result does not depend on it."""
    signer = Signer(NUM_PERM, SEED)
    known = {s.doc_id: s for s in prior}

    # One document per doc_id; a repeated id keeps its canonical (smallest-text-hash) copy.
    unique: dict[str, Document] = {}
    for d in docs:
        have = unique.get(d.doc_id)
        if have is None or _text_key(d) < _text_key(have):
            unique[d.doc_id] = d
    assignments: dict[str, Assignment] = {}
    states: dict[str, DocState] = {}
    fresh: list[Document] = []
    # Shingle hashes, not tokens, are kept per document: 100,000 token lists held ~1.7 GB.
    hashes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    todo: list[Document] = []
    for doc_id in sorted(unique):
        if doc_id in known:
            s = known[doc_id]
            assignments[doc_id] = Assignment(doc_id, s.event_id, s.copy_id, "already_grouped", 1.0)
        else:
            todo.append(unique[doc_id])
    for d, hashed in zip(todo, _hash_docs(todo, signer), strict=True):
        if hashed is None:
            assignments[d.doc_id] = Assignment(d.doc_id, None, None, "too_short", 0.0)
            states[d.doc_id] = DocState(d.doc_id, None, None, _SHORT_PAYLOAD)
        else:
            fresh.append(d)
            hashes[d.doc_id] = hashed
    del todo

    prior_docs = [p for p in (_from_state(s, signer) for s in prior) if p is not None]
    prior_docs.sort(key=lambda p: p.key)
    new_docs = sorted(_new_docs(fresh, hashes), key=lambda p: p.key)
    all_docs = prior_docs + new_docs
    n_prior = len(prior_docs)
    new_index = list(range(n_prior, len(all_docs)))

    touched_events: set[str] = set()
    aliases: dict[str, str] = {}
    if new_docs:
        _assign_copies(all_docs, new_index, signer, storage_config)
        _assign_events(all_docs, n_prior, touched_events, aliases, storage_config)

    for nd in new_docs:
        assignments[nd.doc_id] = Assignment(
            nd.doc_id, nd.event_id, nd.copy_id, nd.rule, round(nd.similarity, 4), nd.matched
        )
        states[nd.doc_id] = DocState(nd.doc_id, nd.event_id, nd.copy_id, _payload(nd, signer))
    for pd in prior_docs:
        if pd.event_id != pd.prior_event or pd.copy_id != pd.prior_copy:
            states[pd.doc_id] = DocState(
                pd.doc_id, pd.event_id, pd.copy_id, known[pd.doc_id].payload
            )

    events = _events(all_docs, touched_events)
    return Grouping(
        assignments=tuple(assignments[i] for i in sorted(assignments)),
        events=events,
        aliases=tuple(sorted(aliases.items())),
        states=tuple(states[i] for i in sorted(states)),
    )


def _text_key(d: Document) -> str:
    return hashlib.sha1(f"{d.title}\x00{d.text}".encode()).hexdigest()


def _assign_copies(
    all_docs: list[_Doc],
    new_index: list[int],
    signer: Signer,
    storage_config: dict[str, Any] | None = None,
) -> None:
    sigs = np.stack([d.signature for d in all_docs])
    sizes = [d.n_shingles for d in all_docs]
    pairs = copy_pairs(signer, sigs, sizes, new_index, storage_config)
    uf = UnionFind(len(all_docs))
    first_with_copy: dict[str, int] = {}
    for i, d in enumerate(all_docs):
        if d.prior_copy is not None:
            j = first_with_copy.setdefault(d.prior_copy, i)
            uf.union(i, j)
    best: dict[int, tuple[float, int]] = {}
    for a, b, score in pairs:
        uf.union(a, b)
        # Evidence for the later document of the pair: its best-matching earlier member.
        later, earlier = (b, a) if all_docs[a].key < all_docs[b].key else (a, b)
        if all_docs[later].is_new and (
            later not in best or (score, -earlier) > (best[later][0], -best[later][1])
        ):
            best[later] = (score, earlier)
    groups: dict[int, list[int]] = {}
    for i in range(len(all_docs)):
        groups.setdefault(uf.find(i), []).append(i)
    for members in groups.values():
        members.sort(key=lambda i: all_docs[i].key)
        priors = [i for i in members if not all_docs[i].is_new]
        copy_id = (
            all_docs[priors[0]].prior_copy
            if priors
            else _hash_id("c", all_docs[members[0]].doc_id)
        )
        for i in members:
            all_docs[i].copy_id = copy_id
            all_docs[i].extra["copy_members"] = members
        for i in members:
            if all_docs[i].is_new and i in best:
                all_docs[i].similarity, j = best[i]
                all_docs[i].matched = all_docs[j].doc_id


def _assign_events(
    all_docs: list[_Doc],
    n_prior: int,
    touched: set[str],
    aliases: dict[str, str],
    storage_config: dict[str, Any] | None = None,
) -> None:
    # Birth key of each prior event: its oldest member. The older event survives a merge.
    birth: dict[str, tuple[str, str]] = {}
    members_of: dict[str, list[int]] = {}
    for i, d in enumerate(all_docs[:n_prior]):
        if d.prior_event is not None:
            birth[d.prior_event] = min(birth.get(d.prior_event, d.key), d.key)
            members_of.setdefault(d.prior_event, []).append(i)

    # Prior events joined by a copy group that spans them are one event now.
    event_uf: dict[str, str] = {e: e for e in birth}

    def find(e: str) -> str:
        while event_uf[e] != e:
            event_uf[e] = event_uf[event_uf[e]]
            e = event_uf[e]
        return e

    def merge(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            if birth[rb] < birth[ra]:
                ra, rb = rb, ra
            event_uf[rb] = ra

    reps: list[int] = []  # new copy groups' oldest members: they enter clustering
    seen_groups: set[int] = set()
    for i in range(n_prior, len(all_docs)):
        members = all_docs[i].extra["copy_members"]
        assert isinstance(members, list)
        head = members[0]
        if head in seen_groups:
            continue
        seen_groups.add(head)
        prior_events = sorted(
            {e for m in members if (e := all_docs[m].prior_event) is not None}
        )
        for e in prior_events[1:]:
            merge(prior_events[0], e)
        if not prior_events:
            reps.append(head)
    _fingerprint([all_docs[i] for i in reps])

    # Prior event classes (after copy merges) and their representative items.
    classes: dict[str, list[int]] = {}
    for e, idx in members_of.items():
        classes.setdefault(find(e), []).extend(idx)
    class_names = sorted(classes, key=lambda e: birth[e])
    class_items: list[list[int]] = []
    for e in class_names:
        items = sorted(set(classes[e]), key=lambda i: all_docs[i].key)
        # Only each prior copy group's oldest member stands for the group.
        seen: set[str | None] = set()
        chosen = []
        for i in items:
            if all_docs[i].prior_copy not in seen:
                seen.add(all_docs[i].prior_copy)
                chosen.append(i)
        class_items.append(chosen)

    # Items for scoring: prior items first (by class), then new representatives.
    item_docs = [i for items in class_items for i in items] + reps
    item_node = [k for k, items in enumerate(class_items) for _ in items]
    item_node += list(range(len(class_items), len(class_items) + len(reps)))
    n_nodes = len(class_items) + len(reps)
    node_size = [len(items) for items in class_items] + [1] * len(reps)

    matrix = ev.term_matrix([all_docs[i].terms for i in item_docs])
    block_terms = [_top_terms(all_docs[i].terms, BLOCK_TERMS) for i in item_docs]
    sigs = ev.block_signatures(block_terms)
    first_new = len(item_docs) - len(reps)
    edges = ev.candidate_edges(
        sigs, matrix, list(range(first_new, len(item_docs))), storage_config
    )
    node_edges = [(item_node[a], item_node[b], s) for a, b, s in edges]
    node_edges = [(min(a, b), max(a, b), s) for a, b, s in node_edges if a != b]

    node_items: list[list[int]] = [[] for _ in range(n_nodes)]
    for item, node in enumerate(item_node):
        node_items[node].append(item)

    final_name: dict[int, str] = {}  # node -> event id
    for nodes in ev.pieces(n_nodes, node_edges, node_size):
        nodes = sorted(nodes)
        if len(nodes) == 1:
            final_name[nodes[0]] = (
                class_names[nodes[0]] if nodes[0] < len(class_items)
                else _hash_id("e", all_docs[reps[nodes[0] - len(class_items)]].doc_id)
            )
            continue
        items = [it for n in nodes for it in node_items[n]]
        labels = [k for k, n in enumerate(nodes) for _ in node_items[n]]
        sub = matrix[items]
        sim = (sub @ sub.T).toarray()
        item_meta = [all_docs[item_docs[it]] for it in items]
        result = ev.complete_link(
            sim,
            labels,
            [d.names for d in item_meta],
            [(d.setting, *d.places) if d.setting else () for d in item_meta],
            [_principal_day(d) for d in item_meta],
            [d.repeated for d in item_meta],
            [d.published_at.date().toordinal() if d.published_at else None for d in item_meta],
        )
        first_row: dict[int, int] = {}
        for row, k in enumerate(labels):
            first_row.setdefault(k, row)
        by_group: dict[int, list[int]] = {}
        for k, n in enumerate(nodes):
            by_group.setdefault(result[first_row[k]], []).append(n)
        for group_nodes in by_group.values():
            prior_nodes = [n for n in group_nodes if n < len(class_items)]
            if prior_nodes:
                survivor = class_names[min(prior_nodes)]  # classes are in birth order
                for n in prior_nodes:
                    merge(survivor, class_names[n])
                name = find(survivor)
            else:
                oldest = min(
                    (reps[n - len(class_items)] for n in group_nodes),
                    key=lambda i: all_docs[i].key,
                )
                name = _hash_id("e", all_docs[oldest].doc_id)
            for n in group_nodes:
                final_name[n] = name
        # Evidence: each new representative's most similar other item in its final group.
        for k, n in enumerate(nodes):
            if n < len(class_items):
                continue
            row = first_row[k]
            same = [c for c in range(len(items)) if result[c] == result[row] and c != row]
            if same:
                c = max(same, key=lambda c: (sim[row, c], -c))
                d = all_docs[reps[n - len(class_items)]]
                d.similarity = float(sim[row, c])
                d.matched = all_docs[item_docs[items[c]]].doc_id
                d.rule = "event_match"

    # Resolve names through merges of prior events; record aliases.
    for e in birth:
        root = find(e)
        if root != e:
            aliases[e] = root
            touched.add(root)
    for n, name in list(final_name.items()):
        final_name[n] = find(name) if name in event_uf else name

    for k, i in enumerate(reps):
        d = all_docs[i]
        d.event_id = final_name[len(class_items) + k]
        if not d.rule:
            d.rule = "new_event"
        touched.add(d.event_id)
    for d in all_docs[:n_prior]:
        if d.prior_event is not None:
            d.event_id = find(d.prior_event)
    # Copies follow their group's event.
    rep_set = set(reps)
    for i in range(n_prior, len(all_docs)):
        d = all_docs[i]
        members = d.extra["copy_members"]
        assert isinstance(members, list)
        if i in rep_set:
            continue
        head = all_docs[members[0]]
        if head.event_id is None:
            head = next(all_docs[m] for m in members if all_docs[m].event_id is not None)
        d.event_id = head.event_id
        d.rule = "copy"
        if d.event_id is not None:
            touched.add(d.event_id)


def _top_terms(terms: dict[str, float], k: int) -> list[str]:
    """The k heaviest terms, ties by name (as sorted(...)[:k] would give)."""
    return heapq.nsmallest(k, terms, key=lambda t: (-terms[t], t))


def _principal_day(d: _Doc) -> int | None:
    """The day a document is about: its most mentioned full date, else its publication day."""
    if d.dates:
        return date.fromisoformat(d.dates[0]).toordinal()
    if d.published_at is not None:
        return d.published_at.date().toordinal()
    return None


def _events(all_docs: list[_Doc], touched: set[str]) -> tuple[Event, ...]:
    by_event: dict[str, list[_Doc]] = {}
    for d in all_docs:
        if d.event_id in touched:
            by_event.setdefault(d.event_id, []).append(d)
    out = []
    for event_id in sorted(by_event):
        members = sorted(by_event[event_id], key=lambda d: d.key)
        canonical = members[0]
        published = [d.published_at for d in members if d.published_at is not None]
        date_votes: Counter[str] = Counter()
        for d in members:
            date_votes.update(d.dates[:2])
            if d.published_at is not None:
                date_votes[d.published_at.date().isoformat()] += 1
        place_votes: Counter[str] = Counter(p for d in members for p in d.places[:2])
        out.append(
            Event(
                event_id=event_id,
                title=canonical.headline,
                canonical_doc_id=canonical.doc_id,
                canonical_rule=CANONICAL_RULE,
                member_ids=tuple(d.doc_id for d in members),
                n_sources=len({d.source or d.doc_id for d in members}),
                first_published_at=min(published) if published else None,
                last_published_at=max(published) if published else None,
                event_date=_top(date_votes),
                place=_top(place_votes),
            )
        )
    return tuple(out)


def _top(votes: Counter[str]) -> str | None:
    if not votes:
        return None
    return min(votes, key=lambda v: (-votes[v], v))
