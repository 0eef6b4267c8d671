"""A loading process for the warehouse's crash and concurrency tests, run as a subprocess:

    python loadscript.py load PATH RUN_PREFIX      # the three batches, stage by stage, like
                                                   # flows/pipeline.py (one writer open a stage)
    python loadscript.py churn PATH N              # load and publish N small batches in turn

With NEWSDEDUP_TEST_KILL_AT="<batch>:<step>" (a step name from Warehouse's on_step hook, e.g.
"1:load_grouping:written") the process SIGKILLs itself at that exact point.

The grouping here is a stand-in for dedupe.group with the same contract (documents and prior
states in, a Grouping out): each text names its topics, documents sharing a topic are one event,
a document naming two topics merges their events (the older id survives, the other becomes an
alias), identical texts are one copy. It keeps the warehouse tests independent of dedupe/'s
tuning while exercising every table the real grouping writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dedupe.records import Assignment, DocState, Document, Event, Grouping  # noqa: E402
from extract.records import Article, FetchedPage, Reason  # noqa: E402
from warehouse.store import RunCounts, Warehouse  # noqa: E402

T0 = datetime(2025, 1, 7, 9, 0, tzinfo=UTC)
SITES = ("nhk.example", "kyodo.example", "reuters.example", "ap.example", "times.example")
N_PER_BATCH = 120


def _doc_text(topics: Sequence[str], variant: int) -> str:
    words = " ".join(f"word{(variant * 7 + i) % 997}" for i in range(150))
    return f"topics={'|'.join(topics)}. {words}"


def batch(k: int) -> tuple[list[FetchedPage], list[Article]]:
    """Batch k: fetched pages and their articles. Batch 2 holds documents that bridge topics of
    batches 0 and 1 (merges, aliases) and a failed page or two."""
    pages: list[FetchedPage] = []
    arts: list[Article] = []
    for i in range(N_PER_BATCH):
        site = SITES[i % len(SITES)]
        url = f"https://{site}/news/{k}/{i}"
        base = i - 1 if i % 4 == 3 else i  # every fourth page repeats its neighbour: a copy
        topic = f"t{k}-{base % 40}"
        topics: tuple[str, ...] = (topic,)
        if k == 2 and i % 10 == 0:
            topics = (f"t0-{base % 40}", f"t1-{base % 40}")
        text = _doc_text(topics, base)
        h = hashlib.sha256(text.encode()).hexdigest()[:16]
        when = T0 + timedelta(minutes=k * 600 + i)
        pages.append(FetchedPage(url=url, final_url=url, source=f"src{k}", status=Reason.OK,
                                 fetched_at=when, http_status=200, etag=f'"{k}-{i}"'))
        arts.append(Article(article_id=f"a{k}-{i:04d}", url=url, canonical_url=url,
                            source=f"src{k}", status=Reason.OK, text=text, content_hash=h,
                            title=f"Story {topic} from {site}", published_at=when,
                            sitename=site))
    for j in range(3):
        url = f"https://{SITES[j]}/broken/{k}/{j}"
        pages.append(FetchedPage(url=url, final_url=url, source=f"src{k}",
                                 status=Reason.HTTP_ERROR if j else Reason.TIMEOUT,
                                 fetched_at=T0, http_status=500 if j else None, detail="x"))
    return pages, arts


def fake_group(docs: Sequence[Document], prior: Sequence[DocState]) -> Grouping:
    info: dict[str, dict[str, object]] = {}
    old_event: dict[str, str | None] = {}
    for s in prior:
        info[s.doc_id] = json.loads(s.payload)
        old_event[s.doc_id] = s.event_id
    for d in docs:
        topics = d.text.split(".", 1)[0].removeprefix("topics=").split("|")
        info[d.doc_id] = {
            "topics": topics, "site": d.source, "title": d.title,
            "copy": hashlib.sha256(d.text.encode()).hexdigest()[:12],
            "published": d.published_at.isoformat() if d.published_at else None,
        }
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for meta in info.values():
        topics = list(meta["topics"])  # type: ignore[call-overload]
        for t in topics[1:]:
            a, b = find(topics[0]), find(t)
            if a != b:
                parent[max(a, b)] = min(a, b)
    members: dict[str, list[str]] = {}
    for doc_id, meta in info.items():
        members.setdefault(find(meta["topics"][0]), []).append(doc_id)  # type: ignore[index]
    new_ids = {d.doc_id for d in docs}
    seen_copies = {str(info[s.doc_id]["copy"]) for s in prior}
    assignments, events, states, aliases = [], [], [], []
    for ids in members.values():
        if not new_ids & set(ids):
            continue
        olds = sorted({e for i in ids if (e := old_event.get(i)) is not None})
        event_id = olds[0] if olds else "e-" + min(ids)
        aliases += [(o, event_id) for o in olds[1:]]
        ids.sort()
        canonical = ids[0]
        pubs = [datetime.fromisoformat(str(info[i]["published"])) for i in ids]
        events.append(Event(event_id, str(info[canonical]["title"]), canonical, "earliest",
                            tuple(ids), len({info[i]["site"] for i in ids}), min(pubs),
                            max(pubs)))
        for i in ids:
            copy_id = "c-" + str(info[i]["copy"])
            payload = json.dumps(info[i], sort_keys=True).encode()
            if i in new_ids:
                rule = "copy" if info[i]["copy"] in seen_copies else "new_event"
                seen_copies.add(str(info[i]["copy"]))
                assignments.append(Assignment(i, event_id, copy_id, rule, 0.9))
                states.append(DocState(i, event_id, copy_id, payload))
            elif old_event.get(i) != event_id:
                states.append(DocState(i, event_id, copy_id, payload))
    return Grouping(tuple(assignments), tuple(events), tuple(aliases), tuple(states))


def _hook(batch_no: list[int]) -> object:
    kill_at = os.environ.get("NEWSDEDUP_TEST_KILL_AT", "")

    def on_step(step: str) -> None:
        if kill_at == f"{batch_no[0]}:{step}":
            os.kill(os.getpid(), signal.SIGKILL)

    return on_step


def load(path: Path, prefix: str, n_batches: int = 3) -> None:
    """The pipeline's sequence of stages, one writer open a stage, for each batch."""
    current = [0]
    hook = _hook(current)
    for k in range(n_batches):
        current[0] = k
        run_id, now = f"{prefix}-{k}", T0 + timedelta(hours=10 * k)
        pages, arts = batch(k)
        with Warehouse.open(path, publish=False, on_step=hook) as wh:  # type: ignore[arg-type]
            wh.start_run(run_id, now, None)
        with Warehouse.open(path, publish=False, on_step=hook) as wh:  # type: ignore[arg-type]
            wh.load_pages(run_id, pages, arts, now)
        with Warehouse.open(path, publish=False, on_step=hook) as wh:  # type: ignore[arg-type]
            docs = wh.ungrouped_documents()
            prior = wh.dedupe_states()
        grouping = fake_group(docs, prior)
        with Warehouse.open(path, publish=False, on_step=hook) as wh:  # type: ignore[arg-type]
            wh.load_grouping(run_id, grouping, now)
        with Warehouse.open(path, publish=True, on_step=hook) as wh:  # type: ignore[arg-type]
            wh.finish_run(run_id, now, RunCounts())


def churn(path: Path, n_batches: int) -> None:
    """Load and publish `n_batches` new batches of 50 articles, one writer session each."""
    for n in range(n_batches):
        url = f"https://churn.example/{n}"
        page = FetchedPage(url=url, final_url=url, source="churn", status=Reason.OK,
                           fetched_at=T0, http_status=200)
        arts = [Article(article_id=f"churn-{n}-{j}", url=f"{url}#{j}", canonical_url=url,
                        source="churn", status=Reason.OK, text=_doc_text(["c"], j) * 20,
                        content_hash=f"h{n}-{j}") for j in range(50)]
        with Warehouse.open(path, publish=True) as wh:
            wh.start_run(f"churn-{n}", T0, None)
            wh.load_pages(f"churn-{n}", [page], arts, T0)
            wh.finish_run(f"churn-{n}", T0, RunCounts())


if __name__ == "__main__":
    mode, target = sys.argv[1], Path(sys.argv[2])
    if mode == "load":
        load(target, sys.argv[3])
    elif mode == "churn":
        churn(target, int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
