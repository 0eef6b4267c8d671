from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from dedupe import Document, group
from dedupe.records import DocState
from dedupe.state import PayloadError
from tests.dedupe.stories import story_doc, story_text

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SEEDS = SHARED / "seeds"
needs_shared = pytest.mark.skipif(not SEEDS.is_dir(), reason="../shared (seeds) is not present")

CHROME_HEAD = (
    "Home | World | Politics | Business | Sport | Subscribe to our newsletter for the latest "
    "headlines delivered every morning. Advertisement. Trending now: markets, weather, opinion."
)
CHROME_FOOT = (
    "Related posts. Share this article on social media. Comments are closed. Copyright 2025 "
    "Example Daily News Group, all rights reserved. Privacy policy. Terms of use. Contact us."
)


@needs_shared
def test_seeds_events_match_expected() -> None:
    expected = json.loads((SEEDS / "expected.json").read_text())
    docs = [Document(doc_id=p.name, text=p.read_text()) for p in sorted(SEEDS.glob("*.txt"))]
    event_of = {a.doc_id: a.event_id for a in group(docs).assignments}
    gold = {doc: e["key"] for e in expected["events"] for doc in e["documents"]}
    by_gold: dict[str, set[str | None]] = {}
    for doc, key in gold.items():
        by_gold.setdefault(key, set()).add(event_of[doc])
    assert all(len(v) == 1 for v in by_gold.values()), by_gold  # each event in one group
    assert len({next(iter(v)) for v in by_gold.values()}) == len(by_gold)  # and apart


@needs_shared
def test_seed_copies_in_other_outlets_chrome_share_copy_id() -> None:
    docs = [Document(doc_id=p.name, text=p.read_text()) for p in sorted(SEEDS.glob("*.txt"))]
    original = docs[0]
    wrapped = [
        Document(doc_id="outlet-a", text=f"{CHROME_HEAD}\n{original.text}\n{CHROME_FOOT}"),
        Document(doc_id="outlet-b", text=f"Breaking news\n{original.text}\nRead more stories"),
    ]
    g = group(docs + wrapped)
    copy_of = {a.doc_id: a.copy_id for a in g.assignments}
    assert copy_of["outlet-a"] == copy_of["outlet-b"] == copy_of[original.doc_id]
    assert len({copy_of[d.doc_id] for d in docs}) == len(docs)  # the seeds are not copies
    rules = {a.doc_id: a.rule for a in g.assignments}
    assert rules["outlet-a"] == rules["outlet-b"] == "copy"


def test_new_documents_attach_to_prior_events_with_stable_ids() -> None:
    first = group([story_doc("a1", 1, 0), story_doc("a2", 1, 1), story_doc("b1", 2, 0)])
    events = {a.doc_id: a.event_id for a in first.assignments}
    later = group([story_doc("a3", 1, 2), story_doc("c1", 3, 0)], prior=first.states)
    got = {a.doc_id: a for a in later.assignments}
    assert got["a3"].event_id == events["a1"] and got["a3"].rule == "event_match"
    assert got["c1"].event_id not in events.values() and got["c1"].rule == "new_event"
    touched = {e.event_id: e for e in later.events}
    assert set(touched[events["a1"]].member_ids) == {"a1", "a2", "a3"}
    assert {s.doc_id for s in later.states} == {"a3", "c1"}


def test_bridging_copy_merges_events_and_older_id_survives() -> None:
    old = Document("old", story_text(1, 0), published_at=datetime(2024, 1, 1))
    young = Document("young", story_text(2, 0), published_at=datetime(2024, 1, 2))
    first = group([old, young])
    e_old, e_young = (a.event_id for a in first.assignments)
    assert e_old != e_young
    # A page that carries both texts whole is a copy of each: the two events become one.
    both = Document("both", f"{old.text} {young.text}", published_at=datetime(2024, 1, 3))
    second = group([both], prior=first.states)
    assert second.aliases == ((e_young, e_old),)
    assert {s.doc_id: s.event_id for s in second.states} == {
        "both": e_old, "young": e_old,
    }


def test_empty_and_short_texts_are_never_grouped() -> None:
    g = group([Document("e", ""), Document("s", "four words only here"), story_doc("x", 1, 0)])
    got = {a.doc_id: a for a in g.assignments}
    for doc in ("e", "s"):
        assert (got[doc].event_id, got[doc].copy_id, got[doc].rule) == (None, None, "too_short")
    assert got["x"].event_id is not None


def test_unreadable_payload_is_a_named_error() -> None:
    with pytest.raises(PayloadError):
        group([story_doc("x", 1, 0)], prior=[DocState("p", "e", "c", b"not json")])


def _as_v2(state: DocState) -> DocState:
    """The payload an older release wrote: version 2, no pieces, date sources or entities."""
    body = json.loads(state.payload)
    for key in ("guessed", "piece", "bsig", "entities", "titled"):
        body.pop(key, None)
    return DocState(state.doc_id, state.event_id, state.copy_id,
                    json.dumps(body | {"v": 2}).encode())


def test_an_older_release_s_state_is_read_and_extended() -> None:
    first = group([story_doc("a1", 1, 0), story_doc("b1", 2, 0)])
    events = {a.doc_id: a.event_id for a in first.assignments}
    later = group([story_doc("a2", 1, 1)], prior=[_as_v2(s) for s in first.states])
    got = {a.doc_id: a for a in later.assignments}
    assert got["a2"].event_id == events["a1"] and got["a2"].rule == "event_match"
    # The prior members it touched are written back in the current version.
    assert all(json.loads(s.payload)["v"] == 3 for s in later.states)
