"""The forked paths of grouping (shingling/signing, event fingerprints, candidate cosines) give
exactly what the serial paths give: the thresholds are lowered so that a few documents take them."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from dedupe import Document, events, group, grouping, parallel
from dedupe import fingerprint as fp_mod

SEEDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "seeds"


def _docs() -> list[Document]:
    if not SEEDS.is_dir():
        pytest.skip(f"no seed articles at {SEEDS}")
    docs = [Document(doc_id=p.name, text=p.read_text()) for p in sorted(SEEDS.glob("*.txt"))]
    # Copies, and a too-short text, so every branch of the per-document step is taken.
    docs += [Document(doc_id=f"copy-{d.doc_id}", text=f"Breaking\n{d.text}") for d in docs[:3]]
    docs.append(Document(doc_id="short", text="too short"))
    return docs


def test_forked_grouping_equals_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _docs()
    serial = group(docs)
    monkeypatch.setattr(grouping, "_PARALLEL_MIN", 1)
    monkeypatch.setattr(grouping, "_CHUNK", 2)
    monkeypatch.setattr(fp_mod, "PARALLEL_MIN", 1)
    monkeypatch.setattr(fp_mod, "_CHUNK", 2)
    monkeypatch.setattr(events, "_PARALLEL_PAIRS", 1)  # the event candidates' cosines too
    monkeypatch.setattr(events, "_CHUNK", 3)
    assert group(docs) == serial


def test_map_fingerprints_matches_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = [(d.text, d.title) for d in _docs()]
    monkeypatch.setattr(fp_mod, "PARALLEL_MIN", 1)
    monkeypatch.setattr(fp_mod, "_CHUNK", 3)
    assert fp_mod.map_fingerprints(jobs, list, workers=2) == [fp_mod.fingerprint(*j) for j in jobs]



def _sigterm_disposition(_: object) -> object:
    return signal.getsignal(signal.SIGTERM)


def test_forked_workers_end_quietly() -> None:
    """Under a parent whose SIGTERM handler raises (a Prefect flow run's does), the workers
    take SIGTERM's default action: leaving the pool ends them with SIGTERM, and a worker that
    ran the parent's handler printed its traceback into the dedupe task's log."""

    def raising(signum: int, frame: object) -> None:
        raise RuntimeError("the parent's handler")

    previous = signal.signal(signal.SIGTERM, raising)
    try:
        with parallel.fork_pool(2) as pool:
            seen = pool.map(_sigterm_disposition, range(4), chunksize=1)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [signal.SIG_DFL] * 4
