"""Extraction in worker processes: every core, a hard time limit per page, in input order.

Why processes and not threads: lxml (under trafilatura) is not thread-safe, and the work is CPU.
Why our own small pool and not concurrent.futures: a page that hangs must cost one page, not the
run. ProcessPoolExecutor cannot kill one stuck worker, and a worker that dies breaks the whole
executor. Here each worker has its own pipe; the parent knows which page each worker is on, kills
a worker that overruns `timeout_s` on one page (that page: EXTRACTION_TIMEOUT), starts a fresh
one, and gives the rest of the chunk to it. A worker that dies (segfault, OOM kill) fails only the
page it was on (EXTRACTION_FAILED).

Work goes out in chunks (CHUNK_SIZE pages per message) to amortise pickling and wake-ups; results
come back one per page so that the parent always knows where a worker is. At most
`WINDOW_CHUNKS_PER_WORKER` chunks per worker are read ahead of the first result not yet handed
out, so memory stays bounded for any number of inputs (`imap_ordered` takes an iterator).

Workers start from a forkserver that has already imported extract.clean (trafilatura takes ~0.7 s
to import), so replacing a killed worker costs milliseconds, and no worker is forked from a
parent that runs threads (Prefect does), which `fork` would make unsafe.
"""

from __future__ import annotations

import gc
import multiprocessing
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from extract.clean import clean_page, content_hash
from extract.records import Article, FetchedPage, Reason
from extract.urls import canonicalize, url_id
from extract.workers import check_pool, default_workers

T = TypeVar("T")
R = TypeVar("R")

# Pages per message. A page takes tens of milliseconds to extract and a round trip through a pipe
# a fraction of one, so 4 pages a message make IPC a rounding error of the work while a worker
# holds little (at most two chunks). Once the input is exhausted the last chunks go out one page
# at a time, so the run does not end with one core idle while the other works through a queue.
# Current per-page CPU: `python -m bench.pages`.
CHUNK_SIZE = 4
# Pages read ahead of the first result not yet handed out, per worker: results are yielded in
# input order, so one slow page (a few real pages take over a second) stalls the other workers
# once they are this far ahead: 32 pages is about that second of work for each other worker.
WINDOW_PAGES_PER_WORKER = 32
# A worker is replaced after this many pages, so that memory lxml fragments on odd pages is given
# back to the system on long runs (a fresh worker from the forkserver costs less than one page's
# extraction, so replacing it every 1000 pages costs under 0.1%).
MAX_PAGES_PER_WORKER = 1000
# Allocations between collections of the youngest generation in a worker (Python's default: 700).
GC_GEN0_THRESHOLD = 50_000
# A worker asked to stop gets this long to exit before it is killed.
STOP_GRACE_S = 2.0

_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        methods = multiprocessing.get_all_start_methods()
        if "forkserver" in methods:
            _CONTEXT = multiprocessing.get_context("forkserver")
            _CONTEXT.set_forkserver_preload(["extract.clean"])
        else:  # macOS/Windows: spawn, slower to start but equally safe
            _CONTEXT = multiprocessing.get_context("spawn")
    return _CONTEXT


def prestart() -> None:
    """Start the forkserver now, so that it imports trafilatura while the caller does other
    work (importing Prefect, creating the flow run, discovering sources) rather than while the
    first fetched pages wait for a worker: in the 10,000-page benchmark the first page was
    extracted 3 s after it was fetched, the forkserver starting beside a busy flow process.
    Idempotent; a no-op where there is no forkserver (macOS, Windows)."""
    if _context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _worker_main(conn: Connection, fn: Callable[[Any], Any]) -> None:
    """Say hello, then take chunks of (index, item), answer (index, ok, result-or-error) for
    each item."""
    # The imported modules (trafilatura, lxml, the language data) are never freed: freezing them
    # takes them out of every collection, and a larger first generation runs the collector ~70x
    # less often on the many small objects a page makes and drops. Measured on the 311 dev pages
    # in one process: 17.61 -> 17.08 s and 21.27 -> 20.63 s (-3%), same output.
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)
    # Chunks are received by a thread, as soon as they are sent, while this thread extracts:
    # a chunk of fetched pages (4 x ~70 KiB) is larger than the socket's buffer, and without it
    # the parent's send blocked until this worker finished its current chunk, while the other
    # workers waited for work (23.6 s of 45 s blocked in write at 2,000 pages, cProfile of
    # bench/bench_e2e.py). The thread never touches lxml, which is not thread-safe.
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def receive() -> None:
        while True:
            try:
                chunk = conn.recv()
            except Exception:  # closed, or unreadable: end, and the parent sees this worker go
                chunk = None
            inbox.put(chunk)
            if chunk is None:
                return

    threading.Thread(target=receive, name="newsdedup-pool-receive", daemon=True).start()
    conn.send(None)  # started and unpickled `fn`: only now does a page's clock run
    while True:
        chunk = inbox.get()
        if chunk is None:
            return
        for index, item in chunk:
            try:
                conn.send((index, True, fn(item)))
            except Exception as err:  # the item's failure, reported, never the worker's
                conn.send((index, False, f"{type(err).__name__}: {err}"[:300]))


@dataclass
class _Slot:
    process: Any
    conn: Connection
    work: deque[tuple[int, Any]] = field(default_factory=deque)
    deadline: float = float("inf")
    ready: bool = False
    served: int = 0


def imap_ordered(
    fn: Callable[[T], R],
    items: Iterable[T],
    on_error: Callable[[T, Reason, str], R],
    workers: int | None = None,
    timeout_s: float = 30.0,
    chunk_size: int = CHUNK_SIZE,
) -> Generator[R, None, None]:
    """fn(item) for every item, in worker processes, yielded in input order.

    `fn` must be a module-level function (it is pickled by name). An item that raises, overruns
    `timeout_s` or kills its worker yields on_error(item, reason, detail) instead, with reason
    EXTRACTION_FAILED or EXTRACTION_TIMEOUT."""
    check_pool(workers, timeout_s)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    n_workers = workers if workers is not None else default_workers()
    ctx = _context()
    source = iter(enumerate(items))
    pending: deque[list[tuple[int, Any]]] = deque()
    held: dict[int, Any] = {}  # index -> item, for every item sent but not answered
    done: dict[int, R] = {}
    next_out = 0
    read = 0
    exhausted = False
    window = max(1, n_workers) * max(WINDOW_PAGES_PER_WORKER, 2 * chunk_size)

    def start() -> _Slot:
        parent, child = ctx.Pipe(duplex=True)
        process = ctx.Process(target=_worker_main, args=(child, fn), daemon=True)
        process.start()
        child.close()
        return _Slot(process, parent)

    def retire(slot: _Slot) -> None:
        slot.conn.close()
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join(STOP_GRACE_S)

    def fail_current(slot: _Slot, reason: Reason, detail: str) -> None:
        index, _ = slot.work.popleft()
        done[index] = on_error(held.pop(index), reason, detail)
        if slot.work:  # the rest of the chunk goes to the front of the queue, order kept
            pending.appendleft(list(slot.work))
            slot.work.clear()

    slots: list[_Slot] = []
    try:
        while True:
            # Read ahead, within the window.
            while not exhausted and len(pending) < 2 * n_workers and read - next_out < window:
                chunk = []
                for index, item in source:
                    chunk.append((index, item))
                    if len(chunk) >= chunk_size:
                        break
                if len(chunk) < chunk_size:
                    exhausted = True
                if chunk:
                    read += len(chunk)
                    pending.append(chunk)
                if exhausted:  # the tail: one page per message, to whichever worker is free
                    pending = deque([pair] for queued in pending for pair in queued)
            # Hand chunks to idle workers, start workers only when there is work for them, then
            # give each busy worker its next chunk before it runs dry (at most two in flight), so
            # that no worker waits for the parent to be scheduled between chunks.
            now = time.monotonic()
            for slot in [s for s in slots if not s.work and s.served >= MAX_PAGES_PER_WORKER]:
                slots.remove(slot)  # worn out: a fresh one starts below if there is work
                retire(slot)
            while pending:
                idle = [slot for slot in slots if not slot.work]
                if idle:
                    slot = idle[0]
                elif len(slots) < n_workers:
                    slot = start()
                    slots.append(slot)
                elif exhausted:  # the tail: no read-ahead, each page to the first worker free
                    break
                else:
                    hungry = [slot for slot in slots if len(slot.work) <= chunk_size
                              and slot.served + len(slot.work) < MAX_PAGES_PER_WORKER]
                    if not hungry:
                        break
                    slot = min(hungry, key=lambda s: len(s.work))
                chunk = pending.popleft()
                held.update(chunk)
                if not slot.work:
                    slot.deadline = now + timeout_s if slot.ready else float("inf")
                slot.work.extend(chunk)
                slot.conn.send(chunk)
            # Hand out what is finished, in order.
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
            busy = [slot for slot in slots if slot.work]
            if not busy:
                if exhausted and not pending:
                    return
                continue
            first_deadline = min(slot.deadline for slot in busy)
            ready = wait([slot.conn for slot in busy],
                         None if first_deadline == float("inf")
                         else max(0.0, first_deadline - time.monotonic()))
            now = time.monotonic()
            retired: list[_Slot] = []
            for slot in slots:
                if not slot.work:
                    continue
                if slot.conn in ready:
                    try:
                        message = slot.conn.recv()
                    except (EOFError, OSError):
                        slot.process.join(0.5)
                        code = slot.process.exitcode
                        if not slot.ready:
                            raise RuntimeError(
                                f"an extraction worker could not start (exit code {code})"
                            ) from None
                        fail_current(slot, Reason.EXTRACTION_FAILED,
                                     f"worker died (exit code {code})")
                        retired.append(slot)
                        continue
                    if message is None:  # hello: the first page's clock starts now
                        slot.ready = True
                        slot.deadline = now + timeout_s
                        continue
                    index, ok, payload = message
                    expected, _ = slot.work.popleft()
                    assert index == expected, (index, expected)
                    item = held.pop(index)
                    slot.served += 1
                    done[index] = payload if ok else on_error(
                        item, Reason.EXTRACTION_FAILED, str(payload))
                    slot.deadline = now + timeout_s
                elif now >= slot.deadline:
                    fail_current(slot, Reason.EXTRACTION_TIMEOUT,
                                 f"no result within {timeout_s:g} s; worker killed")
                    retired.append(slot)
            # Dead and stuck workers go; the dispatcher starts fresh ones when needed.
            for slot in retired:
                slots.remove(slot)
                retire(slot)
    finally:
        for slot in slots:
            try:
                slot.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + STOP_GRACE_S
        for slot in slots:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            retire(slot)


def failed_article(page: FetchedPage, reason: Reason, detail: str) -> Article:
    """The outcome of a page whose extraction timed out or failed outside clean_page."""
    canonical = canonicalize(page.final_url or page.url)
    return Article(
        article_id=url_id(canonical),
        url=page.url,
        canonical_url=canonical,
        source=page.source,
        status=reason,
        text="",
        content_hash=content_hash(""),
        title=page.title_hint,
        detail=detail,
    )


def clean_pages(
    pages: Sequence[FetchedPage] | Iterable[FetchedPage],
    workers: int | None = None,
    timeout_s: float = 30.0,
    extract_fn: Callable[[FetchedPage], Article] = clean_page,
) -> list[Article]:
    """Every page as an Article, in input order: ok pages extracted in worker processes, the
    others passed through with their fetch status (so every URL has an outcome). `extract_fn`
    is for tests (a module-level function standing in for clean_page)."""
    return list(iter_clean_pages(pages, workers, timeout_s, extract_fn))


def iter_clean_pages(
    pages: Iterable[FetchedPage],
    workers: int | None = None,
    timeout_s: float = 30.0,
    extract_fn: Callable[[FetchedPage], Article] = clean_page,
) -> Iterator[Article]:
    """clean_pages as a stream, for inputs too big to hold."""
    return imap_ordered(
        _PassThrough(extract_fn),
        pages,
        on_error=failed_article,
        workers=workers,
        timeout_s=timeout_s,
    )


@dataclass(frozen=True)
class _PassThrough:
    """Extract ok pages; give the others their fetch outcome without parsing anything. (A
    picklable callable object, so that a test can swap the extraction function.)"""

    extract_fn: Callable[[FetchedPage], Article]

    def __call__(self, page: FetchedPage) -> Article:
        if not page.ok:
            return clean_page(page)
        article = self.extract_fn(page)
        if article.url != page.url:  # keep the URL the caller asked for as the outcome's key
            article = replace(article, url=page.url)
        return article
