"""Property tests: order independence, idempotence, stable ids across incremental runs, and
too-short texts never grouped."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dedupe import DocState, Document, group
from dedupe.runs import cut, group_in_runs
from tests.dedupe.stories import blended_doc, partition, story_doc

FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

doc_specs = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 5)), min_size=1, max_size=10
)
short_texts = st.sampled_from(["", "   ", "too short", "one two three four"])


def make_docs(specs: list[tuple[int, int]]) -> list[Document]:
    return [story_doc(f"d{i:02d}", story, variant) for i, (story, variant) in enumerate(specs)]


def ids(grouping) -> dict[str, tuple[str | None, str | None]]:
    return {a.doc_id: (a.event_id, a.copy_id) for a in grouping.assignments}


@FAST
@given(doc_specs, st.randoms(use_true_random=False))
def test_order_independent(specs, rnd) -> None:
    docs = make_docs(specs)
    shuffled = list(docs)
    rnd.shuffle(shuffled)
    assert ids(group(docs)) == ids(group(shuffled))


@FAST
@given(doc_specs)
def test_idempotent(specs) -> None:
    docs = make_docs(specs)
    first = group(docs)
    again = group(docs, prior=first.states)
    assert ids(again) == ids(first)
    assert again.states == () and again.events == () and again.aliases == ()
    assert {a.rule for a in again.assignments} == {"already_grouped"}


@FAST
@given(doc_specs, st.integers(0, 10))
def test_incremental_runs_give_the_one_run_partition_and_keep_ids(specs, cut) -> None:
    docs = sorted(make_docs(specs), key=lambda d: d.doc_id)  # canonical order (all undated)
    cut = min(cut, len(docs))
    one_run = group(docs)
    first = group(docs[:cut])
    second = group(docs[cut:], prior=first.states)
    state: dict[str, DocState] = {s.doc_id: s for s in first.states}
    state.update({s.doc_id: s for s in second.states})
    assert partition({d: s.event_id for d, s in state.items()}) == partition(
        {a.doc_id: a.event_id for a in one_run.assignments}
    )
    assert partition({d: s.copy_id for d, s in state.items()}) == partition(
        {a.doc_id: a.copy_id for a in one_run.assignments}
    )
    # Earlier ids survive: every first-run event id is still in use, or aliased to one.
    alias = dict(second.aliases)
    live = {s.event_id for s in state.values()}
    for s in first.states:
        if s.event_id is not None:
            assert s.event_id in live or alias.get(s.event_id) in live


@FAST
@given(doc_specs, st.lists(short_texts, min_size=1, max_size=4))
def test_too_short_never_grouped(specs, texts) -> None:
    docs = make_docs(specs) + [
        Document(doc_id=f"s{i}", text=t) for i, t in enumerate(texts)
    ]
    g = group(docs)
    for a in g.assignments:
        if a.doc_id.startswith("s"):
            assert (a.event_id, a.copy_id, a.rule) == (None, None, "too_short")
    for e in g.events:
        assert not any(m.startswith("s") for m in e.member_ids)
    # And they stay out when grouped again later.
    later = group([story_doc("z", 0, 0)], prior=g.states)
    assert all(not m.startswith("s") for e in later.events for m in e.member_ids)


blended_specs = st.lists(
    st.tuples(
        st.integers(0, 3), st.integers(0, 3), st.integers(0, 3),
        st.one_of(st.none(), st.integers(0, 40)), st.booleans(),
    ),
    min_size=1, max_size=24,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blended_specs, st.integers(1, 8), st.randoms(use_true_random=False))
def test_n_runs_in_any_order_end_as_one_batch(specs, n_runs, rnd) -> None:
    """The same articles cut into N runs, in any order, end in the events and copy groups of
    one batch: the pieces new articles touch are re-decided whole (grouping.py)."""
    docs = [blended_doc(f"b{i:02d}", *spec) for i, spec in enumerate(specs)]
    one_batch = group(docs)
    arrival = list(docs)
    rnd.shuffle(arrival)
    final = group_in_runs(cut(arrival, n_runs))
    for field in ("event_id", "copy_id"):
        assert partition({d: getattr(a, field) for d, a in final.items()}) == partition(
            {a.doc_id: getattr(a, field) for a in one_batch.assignments}
        )
