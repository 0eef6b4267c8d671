"""The page feed between the fetch tasks and the one extraction pool (flows/feed.py), without
Prefect: stand-in futures, targets that carry their body or a mock transport (no network)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from extract.fetch import Fetcher
from extract.policy import FetchPolicy
from extract.records import FetchedPage, Reason, Target, Validators
from flows import tasks
from flows.feed import FeedClosed, PageFeed, fetch_into
from warehouse.store import UrlState

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
HTML = (b"<html><head><title>T</title></head><body><article><p>"
        + b"A sentence long enough to be kept as an article body. " * 40
        + b"</p></article></body></html>")


class _State:
    def __init__(self, ok: bool) -> None:
        self.ok = ok

    def is_completed(self) -> bool:
        return self.ok


class _Future:
    """What PageFeed uses of a PrefectFuture."""

    def __init__(self, ok: bool = True) -> None:
        self.state = _State(ok)
        self.callbacks: list[Callable[[Any], None]] = []

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        self.callbacks.append(fn)

    def wait(self, timeout: float | None = None) -> None:
        pass

    def finish(self) -> None:
        for fn in self.callbacks:
            fn(self)


def _target(url: str, source: str = "s") -> Target:
    return Target(url=url, source=source, body=HTML, content_type="text/html")


def _page(url: str, body: bytes = b"x") -> FetchedPage:
    return FetchedPage(url=url, final_url=url, source="s", status=Reason.OK, fetched_at=NOW,
                       body=body)


def test_fetch_into_puts_every_target_once_keyed_in_input_order() -> None:
    feed = PageFeed(1)
    targets = [
        _target("http://a.test/1"),
        _target("http://a.test/later"),  # deferred by an earlier Retry-After
        _target("http://a.test/2"),
        _target("http://a.test/1#frag"),  # same canonical URL as the first
    ]
    states = {"http://a.test/later": UrlState(Validators(), (NOW + timedelta(hours=1)).replace(
        tzinfo=None), None)}
    outcomes = fetch_into(feed, 3, targets, FetchPolicy(), states, NOW)
    fut = _Future()
    feed.watch([fut])  # type: ignore[list-item]
    fut.finish()
    got = list(feed)
    assert sorted(k for k, _ in got) == [(3, 0), (3, 1), (3, 2), (3, 3)]
    by_key = dict(got)
    # Keyed by the target's position in the source (iter_fetch_indexed): a deferred URL keeps
    # its place; it no longer moves to the front.
    assert by_key[(3, 1)].status is Reason.DEFERRED
    assert [by_key[(3, i)].url for i in (0, 2, 3)] == [
        "http://a.test/1", "http://a.test/2", "http://a.test/1#frag"]
    assert by_key[(3, 3)].status is Reason.DUPLICATE_URL
    assert by_key[(3, 3)].detail == "same canonical URL as target 0"  # index among targets
    assert outcomes == {"deferred": 1, "ok": 2, "duplicate_url": 1}
    assert feed.fetch_finished_at is not None


def test_feed_ends_when_every_task_is_final_and_ignores_a_retry_s_repeats() -> None:
    feed = PageFeed(2)
    a, b = _Future(), _Future()
    feed.watch([a, b])  # type: ignore[list-item]
    feed.put(0, [(0, _page("http://a.test/1"))])
    feed.put(0, [(0, _page("http://a.test/1"))])  # a retried task's second attempt
    feed.put(1, [(0, _page("http://b.test/1")), (1, _page("http://b.test/2"))])
    a.finish()
    feed.put(1, [])
    b.finish()
    assert [k for k, _ in feed] == [(0, 0), (1, 0), (1, 1)]


def test_feed_ends_at_once_when_a_fetch_task_failed() -> None:
    feed = PageFeed(2)
    ok, failed = _Future(), _Future(ok=False)
    feed.watch([ok, failed])  # type: ignore[list-item]
    feed.put(0, [(0, _page("http://a.test/1"))])
    failed.finish()  # `ok` is still running: the feed does not wait for it
    assert [k for k, _ in feed] == [(0, 0)]


def test_extract_feed_returns_pages_without_bodies_and_articles_in_key_order() -> None:
    feed = PageFeed(1)
    fut = _Future()
    feed.watch([fut])  # type: ignore[list-item]
    feed.put(1, [(0, _page("http://b.test/1", HTML))])  # arrives first, sorts last
    feed.put(0, [(1, _page("http://a.test/2", HTML)), (0, _page("http://a.test/1", HTML))])
    fut.finish()
    pages, articles = tasks.extract_feed.fn("t", feed, 1, 30.0)
    assert [p.url for p in pages] == ["http://a.test/1", "http://a.test/2", "http://b.test/1"]
    assert [a.url for a in articles] == [p.url for p in pages]
    assert all(p.body == b"" for p in pages)
    assert all(a.status is Reason.OK for a in articles)


def test_feed_waits_for_fetch_tasks_not_yet_submitted() -> None:
    feed = PageFeed(2)  # two sources; the second is still being discovered
    a = _Future()
    feed.watch([a])  # type: ignore[list-item]
    feed.put(0, [(0, _page("http://a.test/1"))])
    a.finish()
    assert feed.fetch_finished_at is None  # one fetch task is still to come
    b = _Future()
    feed.watch([b])  # type: ignore[list-item]
    feed.put(1, [(0, _page("http://b.test/1"))])
    b.finish()
    assert [k for k, _ in feed] == [(0, 0), (1, 0)]


def test_an_abandoned_feed_ends_after_the_pages_in_hand() -> None:
    feed = PageFeed(3)
    feed.put(0, [(0, _page("http://a.test/1"))])
    feed.abandon()  # a discovery failed: no more fetch tasks
    assert [k for k, _ in feed] == [(0, 0)]


def test_a_run_with_no_sources_has_an_empty_feed() -> None:
    assert list(PageFeed(0)) == []


def test_sources_sharing_the_run_s_fetcher_share_its_host_and_overall_limits() -> None:
    """Two sources fetched at once through one Fetcher (as a flow run does): their requests
    to one host never overlap at per_host_concurrency=1, and no more than `concurrency` are in
    flight overall although each source has `concurrency` threads."""
    lock = threading.Lock()
    in_flight: dict[str, int] = {"all": 0}
    peak: dict[str, int] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        keys = ("all", request.url.host)
        with lock:
            for k in keys:
                in_flight[k] = in_flight.get(k, 0) + 1
                peak[k] = max(peak.get(k, 0), in_flight[k])
        time.sleep(0.02)
        with lock:
            for k in keys:
                in_flight[k] -= 1
        return httpx.Response(200, headers={"Content-Type": "text/html"},
                              stream=httpx.ByteStream(HTML))

    def resolve(host: str, port: int, *rest: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    policy = FetchPolicy(per_host_delay_s=0, per_host_concurrency=1, concurrency=3)
    sources = [
        [Target(f"http://{host}/{source}/{i}", source) for i in range(4)
         for host in ("shared.example", f"{source}1.example", f"{source}2.example")]
        for source in ("a", "b")
    ]
    feed = PageFeed(2)
    with Fetcher(policy, transport=httpx.MockTransport(handler), resolver=resolve) as fetcher:
        threads = [
            threading.Thread(target=fetch_into,
                             args=(feed, i, targets, policy, {}, NOW, fetcher))
            for i, targets in enumerate(sources)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert peak["shared.example"] == 1  # each source alone would have had its own slot
    assert peak["all"] <= 3  # 6 fetch threads in all
    futures = [_Future(), _Future()]
    feed.watch(futures)  # type: ignore[arg-type]
    for fut in futures:
        fut.finish()
    pages = [page for _, page in feed]
    assert len(pages) == 24 and all(page.ok for page in pages)


def _put_in_thread(
    feed: PageFeed, source_index: int, page: FetchedPage, position: int = 0
) -> tuple[threading.Thread, list[BaseException]]:
    """feed.put of one page from another thread; the errors it raised."""
    errors: list[BaseException] = []

    def put() -> None:
        try:
            feed.put(source_index, [(position, page)])
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    thread = threading.Thread(target=put, daemon=True)
    thread.start()
    return thread, errors


def test_a_full_feed_makes_fetching_wait_for_the_reader() -> None:
    """Bounded in pages and in body bytes: a put waits until the reader has taken enough (a put
    into an empty feed always goes in, however large)."""
    feed = PageFeed(3, max_bytes=150, max_pages=2)
    feed.put(0, [(0, _page("http://a.test/1", b"x" * 400))])  # empty feed: in, over max_bytes
    waiting, errors = _put_in_thread(feed, 1, _page("http://b.test/1", b"y" * 100))
    waiting.join(0.2)
    assert waiting.is_alive()  # 400 + 100 bytes > 150: waits for the reader
    pages = iter(feed)
    assert next(pages)[0] == (0, 0)  # taken: room for the waiting put
    waiting.join(5)
    assert not waiting.is_alive() and not errors
    feed.put(2, [(0, _page("http://c.test/1", b""))])  # 100 + 0 bytes, 2 pages: fits
    third, _ = _put_in_thread(feed, 2, _page("http://c.test/2", b""), position=1)
    third.join(0.2)
    assert third.is_alive()  # a third page waits: max_pages = 2
    assert next(pages)[0] == (1, 0)
    third.join(5)
    assert not third.is_alive()


def test_a_put_waiting_for_room_fails_once_the_reader_stops() -> None:
    feed = PageFeed(2, max_pages=1)
    feed.put(0, [(0, _page("http://a.test/1"))])
    waiting, errors = _put_in_thread(feed, 1, _page("http://b.test/1"))
    waiting.join(0.2)
    assert waiting.is_alive()
    feed.close()  # what extract_feed does when it stops, for any reason
    waiting.join(5)
    assert not waiting.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], FeedClosed)


def test_once_its_reader_has_read_to_the_end_the_feed_takes_no_more_pages() -> None:
    """One fetch task fails: the feed ends and its reader (the Dask path reads it in the flow,
    then waits for every fetch task) stops. A fetch task still running must fail at once: were
    its pages taken in, nobody would read them, and once the feed was full it would wait for
    room for ever, and the flow with it."""
    feed = PageFeed(2, max_pages=1)
    failed, other = _Future(ok=False), _Future()
    feed.watch([failed, other])  # type: ignore[list-item]
    feed.put(0, [(0, _page("http://a.test/1"))])
    failed.finish()
    assert [k for k, _ in feed] == [(0, 0)]
    with pytest.raises(FeedClosed):
        feed.put(1, [(0, _page("http://b.test/1"))])
