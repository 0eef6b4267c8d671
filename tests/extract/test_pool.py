"""The extraction pool: input order, a hard time limit per page, a dead worker costs one page."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from extract import pool
from extract.clean import clean_page
from extract.pool import clean_pages, imap_ordered
from extract.records import Article, FetchedPage, Reason

WORDS = ("The harbour council met on {n} to approve a new tram line with four stations, "
         "six kilometres of track and a budget of two hundred million euros for the works. ")


def page(n: int, status: Reason = Reason.OK, host: str = "news.example") -> FetchedPage:
    url = f"https://{host}/story/{n}"
    html = (f"<html><head><title>Story {n}</title></head><body><article><h1>Story {n}</h1>"
            f"<p>{WORDS.format(n=n) * 3}</p><p>{WORDS.format(n=n + 1000) * 2}</p>"
            "</article></body></html>")
    return FetchedPage(url=url, final_url=url, source="test", status=status,
                       fetched_at=datetime(2025, 1, 1, tzinfo=UTC), body=html.encode())


# Module-level stand-ins for clean_page: workers import them by name from this module.
def hanging_clean(page: FetchedPage) -> Article:
    if "hang" in page.url:
        time.sleep(3600)
    return clean_page(page)


def crashing_clean(page: FetchedPage) -> Article:
    if "crash" in page.url:
        os._exit(3)
    return clean_page(page)


def raising_clean(page: FetchedPage) -> Article:
    if "raise" in page.url:
        raise RuntimeError("boom")
    return clean_page(page)


def square(n: int) -> int:
    return n * n


def pid_of(_: int) -> int:
    return os.getpid()


def test_results_in_input_order_and_equal_to_in_process_cleaning() -> None:
    pages = [page(n) for n in range(12)]
    articles = clean_pages(pages, workers=2)
    assert articles == [clean_page(p) for p in pages]
    assert all(a.ok for a in articles)


def test_a_hanging_page_times_out_and_the_run_goes_on() -> None:
    pages = [page(0), page(1, host="hang.example"), page(2), page(3), page(4)]
    started = time.monotonic()
    articles = clean_pages(pages, workers=2, timeout_s=3.0, extract_fn=hanging_clean)
    assert time.monotonic() - started < 20
    assert [a.status for a in articles] == [Reason.OK, Reason.EXTRACTION_TIMEOUT, Reason.OK,
                                            Reason.OK, Reason.OK]
    assert "3 s" in articles[1].detail
    assert articles[1].url == "https://hang.example/story/1" and articles[1].text == ""
    assert [a.url for a in articles] == [p.url for p in pages]


def test_a_crashed_worker_fails_only_its_page() -> None:
    pages = [page(0), page(1, host="crash.example"), page(2), page(3, host="crash.example"),
             page(4)]
    articles = clean_pages(pages, workers=2, extract_fn=crashing_clean)
    assert [a.status for a in articles] == [Reason.OK, Reason.EXTRACTION_FAILED, Reason.OK,
                                            Reason.EXTRACTION_FAILED, Reason.OK]
    assert "worker died" in articles[1].detail


def test_an_exception_fails_only_its_page() -> None:
    articles = clean_pages([page(0, host="raise.example"), page(1)], workers=1,
                           extract_fn=raising_clean)
    assert articles[0].status is Reason.EXTRACTION_FAILED and "boom" in articles[0].detail
    assert articles[1].ok


def test_failed_fetches_pass_through_with_their_reason() -> None:
    pages = [page(0), page(1, status=Reason.ROBOTS), page(2, status=Reason.TOO_LARGE)]
    assert [a.status for a in clean_pages(pages, workers=2)] == [
        Reason.OK, Reason.ROBOTS, Reason.TOO_LARGE]


def test_input_is_read_ahead_only_a_bounded_window() -> None:
    pulled = 0

    def numbers() -> Iterator[int]:
        nonlocal pulled
        for n in range(100_000):
            pulled += 1
            yield n

    results = imap_ordered(square, numbers(), on_error=lambda n, r, d: -1, workers=2,
                           chunk_size=4)
    assert [next(results) for _ in range(10)] == [n * n for n in range(10)]
    assert pulled <= 10 + 2 * pool.WINDOW_PAGES_PER_WORKER + 4
    results.close()  # stops and reaps the workers


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"workers": 0}, "workers"), ({"timeout_s": 0}, "timeout_s"), ({"chunk_size": 0}, "chunk")],
)
def test_bad_arguments_say_how_to_fix_them(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        list(imap_ordered(square, [1], on_error=lambda n, r, d: -1, **kwargs))  # type: ignore[arg-type]


def test_empty_input() -> None:
    assert clean_pages([], workers=2) == []


def test_workers_are_replaced_after_many_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "MAX_PAGES_PER_WORKER", 2)
    pids = list(imap_ordered(pid_of, range(6), on_error=lambda n, r, d: -1, workers=1,
                             chunk_size=1))
    assert len(set(pids)) == 3 and -1 not in pids
