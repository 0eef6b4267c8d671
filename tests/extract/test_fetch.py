"""iter_fetch's contract: policy validation, conditional GET, retries, Retry-After, content
types, charsets, decoding, robots.txt, per-host limits, order and duplicates."""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from extract.body import (
    BodyTooLarge,
    BoundedDecoder,
    binary_kind,
    declared_charset,
    looks_like_html,
)
from extract.fetch import Fetcher, iter_fetch
from extract.policy import FetchPolicy, HostLimiter, parse_retry_after
from extract.records import Reason, Target, Validators
from tests.extract.fetching import fetch_in_order
from tests.extract.hostile import HostileServer, article_html

NOW = datetime(2025, 1, 7, 12, 0, tzinfo=UTC)
PUBLIC = {"news.example": ["93.184.216.34"], "other.example": ["93.184.216.35"]}


def resolver(host: str, port: int, *rest: Any) -> list[Any]:
    import socket

    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in PUBLIC[host]]


def policy(**changes: Any) -> FetchPolicy:
    base: dict[str, Any] = dict(total_timeout_s=2, connect_timeout_s=1, per_host_delay_s=0,
                                retries=1, per_host_concurrency=4, concurrency=8,
                                retry_backoff_s=0.01)
    return FetchPolicy(**{**base, **changes})


def mock(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    """A MockTransport whose robots.txt is absent (404: everything allowed)."""

    def wrapped(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        return handler(request)

    return httpx.MockTransport(wrapped)


def fetch_one(handler: Callable[[httpx.Request], httpx.Response], url: str = "http://news.example/a",
              validators: dict[str, Validators] | None = None, **changes: Any):
    [page] = fetch_in_order([Target(url, "s")], policy(**changes), validators or {},
                       transport=mock(handler), resolver=resolver, clock=lambda: NOW)
    return page


def html(body: bytes = b"<!DOCTYPE html><p>hello</p>", status: int = 200,
         ctype: str | None = "text/html; charset=utf-8", **headers: str) -> httpx.Response:
    h = {"Content-Type": ctype} if ctype else {}
    h.update({k.replace("_", "-"): v for k, v in headers.items()})
    # stream=, not content=: httpx reads (and decodes) a content= response at once, and we
    # want our own streaming decoder to see the raw bytes, as it does on the network.
    return httpx.Response(status, headers=h, stream=httpx.ByteStream(body))


# --- FetchPolicy ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"total_timeout_s": 0}, "total_timeout_s must be > 0"),
        ({"max_bytes": -1}, "max_bytes must be > 0"),
        ({"retries": -1}, "retries must be >= 0"),
        ({"connect_timeout_s": 60, "total_timeout_s": 30}, "lower it or raise the total"),
        ({"per_host_concurrency": 20, "concurrency": 4}, "cannot use more workers"),
        ({"user_agent": "Mozilla/5.0"}, "contact URL or e-mail"),
        ({"user_agent": "just a crawler https://x"}, "product token"),
    ],
)
def test_policy_validation_says_how_to_fix(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FetchPolicy(**changes)


def test_default_policy_is_valid_and_descriptive() -> None:
    p = FetchPolicy()
    assert p.allow_private_networks is False and p.respect_robots is True
    assert p.user_agent.startswith("newsdedup/") and "https://" in p.user_agent


# --- Requests and responses ----------------------------------------------------------------

def test_request_headers_and_recorded_fields() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return html(etag='"abc"', last_modified="Mon, 06 Jan 2025 10:00:00 GMT")

    page = fetch_one(handler)
    assert page.ok and page.final_url == "http://news.example/a"
    assert page.etag == '"abc"' and page.last_modified == "Mon, 06 Jan 2025 10:00:00 GMT"
    assert page.fetched_at == NOW and page.attempt == 1 and page.encoding == "utf-8"
    req = [r for r in seen if r.url.path == "/a"][0]
    assert req.headers["user-agent"].startswith("newsdedup/")
    assert req.headers["accept-encoding"] == "gzip, deflate"


def test_conditional_get_gives_not_modified(tmp_path: Any) -> None:
    with HostileServer() as server:
        url = server.url("/etag")
        p = policy(allow_private_networks=True)
        [first] = fetch_in_order([Target(url, "s")], p)
        assert first.ok and first.etag == '"v1"'
        validators = {url: Validators(etag=first.etag, last_modified=first.last_modified)}
        [second] = fetch_in_order([Target(url, "s")], p, validators)
        assert second.status is Reason.NOT_MODIFIED and second.http_status == 304
        assert server.hits["/etag"] == 2


def test_validators_also_match_by_canonical_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("if-modified-since") == "yesterday":
            return httpx.Response(304)
        return html()

    page = fetch_one(handler, "http://NEWS.example/a?utm_source=rss",
                     {"http://news.example/a": Validators(last_modified="yesterday")})
    assert page.status is Reason.NOT_MODIFIED


@pytest.mark.parametrize(
    ("ctype", "body", "status"),
    [
        ("application/xhtml+xml", b"<?xml version='1.0'?><html><p>x</p></html>", Reason.OK),
        ("application/pdf", b"%PDF-1.4", Reason.NOT_HTML),
        ("image/png", b"\x89PNG....", Reason.NOT_HTML),
        ("application/json", b"{}", Reason.NOT_HTML),
        (None, b"  <!doctype html><p>no type</p>", Reason.OK),
        (None, b"plain words, no markup", Reason.NOT_HTML),
        ("text/html", b"%PDF-1.4 lying about its type", Reason.NOT_HTML),
        ("text/html", b"", Reason.EMPTY),
    ],
)
def test_content_types(ctype: str | None, body: bytes, status: Reason) -> None:
    page = fetch_one(lambda r: html(body, ctype=ctype))
    assert page.status is status, page.detail


def test_declared_charset_is_passed_on_not_applied() -> None:
    body = "<p>Café</p>".encode("latin-1")
    page = fetch_one(lambda r: html(body, ctype='text/html; charset="ISO-8859-1"'))
    assert page.ok and page.encoding == "iso-8859-1" and page.body == body


@pytest.mark.parametrize(
    ("status", "reason"), [(404, Reason.HTTP_ERROR), (410, Reason.HTTP_ERROR),
                           (500, Reason.HTTP_ERROR), (204, Reason.EMPTY)],
)
def test_http_errors(status: int, reason: Reason) -> None:
    page = fetch_one(lambda r: html(status=status), retries=0)
    assert page.status is reason and page.http_status == status


def test_transient_502_is_retried_then_succeeds() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        calls.append(1)
        return html(status=502) if len(calls) == 1 else html()

    page = fetch_one(handler, retries=2)
    assert page.ok and page.attempt == 2 and len(calls) == 2


@pytest.mark.parametrize("status", [502, 503, 504])
def test_transient_errors_stop_after_the_retries(status: int) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path != "/robots.txt":
            calls.append(1)
        return html(status=status if request.url.path != "/robots.txt" else 404)

    page = fetch_one(handler, retries=2)
    assert page.status is Reason.HTTP_ERROR and page.attempt == 3 and len(calls) == 3


def test_404_is_not_retried() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return html(status=404)

    assert fetch_one(handler, retries=3).attempt == 1
    assert len(calls) == 1  # the page once (robots.txt is answered by mock())


def test_connect_errors_are_retried() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        calls.append(1)
        if len(calls) < 3:
            raise httpx.ConnectError("refused", request=request)
        return html()

    page = fetch_one(handler, retries=2)
    assert page.ok and page.attempt == 3


def test_timeouts_are_retried_at_most_once() -> None:
    with HostileServer() as server:
        p = policy(allow_private_networks=True, total_timeout_s=0.5, connect_timeout_s=0.5,
                   retries=3)
        [page] = fetch_in_order([Target(server.url("/hang"), "s")], p)
        assert page.status is Reason.TIMEOUT and page.attempt == 2
        assert server.hits["/hang"] == 2
        assert 1.0 <= page.elapsed_s < 2.0  # both attempts and the back-off


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (503, "3600", NOW + timedelta(hours=1)),
        (429, "120", NOW + timedelta(minutes=2)),
        (503, "Tue, 07 Jan 2025 18:00:00 GMT", datetime(2025, 1, 7, 18, tzinfo=UTC)),
        (429, "99999999999999", NOW + timedelta(days=30)),  # clamped, no overflow
    ],
)
def test_retry_after_defers(status: int, retry_after: str, expected: datetime) -> None:
    page = fetch_one(lambda r: html(status=status, retry_after=retry_after), retries=3)
    assert page.status is Reason.DEFERRED and page.attempt == 1
    assert page.retry_after == expected


def test_503_without_retry_after_is_an_error_after_retries() -> None:
    page = fetch_one(lambda r: html(status=503), retries=1)
    assert page.status is Reason.HTTP_ERROR and page.attempt == 2


def test_parse_retry_after_edge_cases() -> None:
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("Mon, 01 Jan 2024 00:00:00 GMT", NOW) == NOW  # past: now


# --- Redirects -----------------------------------------------------------------------------

def test_redirects_are_followed_and_recorded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(301, headers={"Location": "/new?x=1"})
        if request.url.path == "/new":
            return httpx.Response(302, headers={"Location": "http://other.example/final"})
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        return html()

    page = fetch_one(handler, "http://news.example/old")
    assert page.ok and page.url == "http://news.example/old"
    assert page.final_url == "http://other.example/final"


def test_redirect_limits() -> None:
    def chain(request: httpx.Request) -> httpx.Response:
        n = int(request.url.path.strip("/") or 0) if request.url.path != "/robots.txt" else -1
        if n < 0:
            return httpx.Response(404)
        return httpx.Response(307, headers={"Location": f"/{n + 1}"})

    page = fetch_one(chain, "http://news.example/0", max_redirects=3)
    assert page.status is Reason.TOO_MANY_REDIRECTS and "more than 3" in page.detail
    assert fetch_one(lambda r: httpx.Response(302)).status is Reason.HTTP_ERROR  # no Location


def test_cookies_set_by_a_redirect_are_sent_on_the_next_hop() -> None:
    """Consent and anti-bot pages set a cookie and redirect to a page that checks it: without
    the run's cookie jar that is a redirect loop."""
    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        if request.headers.get("cookie") == "consent=yes":
            return html()
        return httpx.Response(302, headers={"Location": "/check", "Set-Cookie": "consent=yes"})

    page = fetch_one(handler, "http://news.example/story")
    assert page.ok and page.final_url == "http://news.example/check"
    assert sent == [None, "consent=yes"]


# --- Robots --------------------------------------------------------------------------------

def test_robots_txt_is_fetched_once_per_host_and_obeyed() -> None:
    with HostileServer() as server:
        p = policy(allow_private_networks=True)
        urls = [server.url(p_) for p_ in ("/private/secret", "/article/1", "/article/2")]
        pages = fetch_in_order([Target(u, "s") for u in urls], p)
        assert [x.status for x in pages] == [Reason.ROBOTS, Reason.OK, Reason.OK]
        assert "robots.txt" in pages[0].detail
        assert server.hits["/robots.txt"] == 1 and server.hits["/private/secret"] == 0
        [ignored] = fetch_in_order([Target(urls[0], "s")], policy(allow_private_networks=True,
                                                              respect_robots=False))
        assert ignored.ok


@pytest.mark.parametrize(
    ("robots", "allowed"),
    [
        (httpx.Response(404), True),  # unavailable: allow all (RFC 9309 2.3.1.3)
        (httpx.Response(403), True),
        (httpx.Response(500), False),  # unreachable: disallow all (RFC 9309 2.3.1.4)
        (httpx.Response(429), False),
        (httpx.Response(200, text="User-agent: newsdedup\nDisallow: /a\n"), False),
        (httpx.Response(200, text="User-agent: otherbot\nDisallow: /\n"), True),
        (httpx.Response(200, text="User-agent: *\nDisallow: /\n"), False),
        (httpx.Response(503, headers={"Retry-After": "60"}), False),
        (httpx.Response(301, headers={"Location": "/robots.txt"}), True),  # loop: unavailable
    ],
)
def test_robots_status_semantics(robots: httpx.Response, allowed: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return robots if request.url.path == "/robots.txt" else html()

    [page] = fetch_in_order([Target("http://news.example/a", "s")], policy(retries=0),
                       transport=httpx.MockTransport(handler), resolver=resolver)
    assert page.ok is allowed and (allowed or page.status is Reason.ROBOTS), page.detail


# --- Politeness ----------------------------------------------------------------------------

def _recording_handler(hold_s: float) -> tuple[Callable[[httpx.Request], httpx.Response],
                                                dict[str, int], dict[str, list[float]]]:
    lock = threading.Lock()
    in_flight: dict[str, int] = {}
    peak: dict[str, int] = {}
    starts: dict[str, list[float]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        with lock:
            in_flight[host] = in_flight.get(host, 0) + 1
            peak[host] = max(peak.get(host, 0), in_flight[host])
            starts.setdefault(host, []).append(time.monotonic())
        time.sleep(hold_s)
        with lock:
            in_flight[host] -= 1
        return html()

    return handler, peak, starts


def test_a_shared_fetcher_fetches_robots_once_across_calls() -> None:
    from extract.fetch import Fetcher

    with HostileServer() as server:
        p = policy(allow_private_networks=True)
        with Fetcher(p) as fetcher:
            for path in ("/article/1", "/article/2"):
                [page] = fetch_in_order([Target(server.url(path), "s")], p, fetcher=fetcher)
                assert page.ok
        assert server.hits["/robots.txt"] == 1


def test_robots_network_failure_is_the_pages_reason() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/robots.txt":
            raise httpx.ConnectError("connection refused", request=request)
        raise AssertionError("the page must not be fetched when robots.txt could not be")

    [page] = fetch_in_order([Target("http://news.example/a", "s")], policy(retries=0),
                       transport=httpx.MockTransport(handler), resolver=resolver)
    assert page.status is Reason.CONNECT_ERROR
    assert page.detail.startswith("http://news.example/robots.txt unreachable")


def test_per_host_concurrency() -> None:
    handler, peak, _ = _recording_handler(0.1)
    targets = [Target(f"http://{h}/{i}", "s") for i in range(6) for h in PUBLIC]
    p = policy(per_host_concurrency=2, concurrency=8)
    assert all(x.ok for x in fetch_in_order(targets, p, transport=mock(handler), resolver=resolver))
    assert peak == {"news.example": 2, "other.example": 2}  # 8 workers, but 2 per host


def test_per_host_delay_between_starts() -> None:
    handler, _, starts = _recording_handler(0.0)
    targets = [Target(f"http://{h}/{i}", "s") for i in range(4) for h in PUBLIC]
    p = policy(per_host_concurrency=2, concurrency=8, per_host_delay_s=0.1)
    assert all(x.ok for x in fetch_in_order(targets, p, transport=mock(handler), resolver=resolver))
    for host_starts in starts.values():
        ordered = sorted(host_starts)
        # Without the delay two starts on a host are ~0 s apart; a start is stamped when its
        # thread runs, so on a loaded machine a gap reads up to a few scheduler ticks short.
        assert min(b - a for a, b in zip(ordered, ordered[1:], strict=False)) >= 0.06


def test_host_limiter_spaces_starts() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    limiter = HostLimiter(1, 2.0, sleep=sleep, monotonic=lambda: clock[0])
    for _ in range(3):
        with limiter.slot("a"):
            pass
    with limiter.slot("b"):
        pass
    assert slept == [2.0, 2.0]  # host b does not wait for host a


# --- Batch contract --------------------------------------------------------------------------

def test_order_duplicates_and_held_bodies() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        if request.url.host == "local.example":
            raise AssertionError("a target with a body must not be fetched")
        return html(request.url.path.encode())

    targets = [
        Target("http://news.example/1", "s"),
        Target("file:///data/a.html", "s", body=b"<p>held</p>",
               content_type="text/html; charset=cp1252"),
        Target("http://news.example/1?utm_source=x#frag", "s"),
        Target("ftp://news.example/x", "s"),
        Target("http://news.example/2", "s"),
        Target("file:///data/empty.html", "s", body=b""),
    ]
    pages = fetch_in_order(targets, policy(), transport=mock(handler), resolver=resolver)
    assert [p.url for p in pages] == [t.url for t in targets]
    assert [p.status for p in pages] == [Reason.OK, Reason.OK, Reason.DUPLICATE_URL,
                                         Reason.BAD_SCHEME, Reason.OK, Reason.EMPTY]
    assert pages[1].body == b"<p>held</p>" and pages[1].encoding == "cp1252"
    assert pages[4].body == b"/2"


def test_a_bug_costs_one_page_not_the_batch() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        if request.url.path == "/bad":
            raise RuntimeError("transport bug")
        return html()

    targets = [Target("http://news.example/bad", "s"), Target("http://news.example/good", "s")]
    pages = fetch_in_order(targets, policy(), transport=mock(handler), resolver=resolver)
    assert pages[0].status is Reason.CONNECT_ERROR and "transport bug" in pages[0].detail
    assert pages[1].ok


def test_empty_batch() -> None:
    assert fetch_in_order([], policy()) == []


# --- Decoding and sniffing -------------------------------------------------------------------

def test_gzip_and_deflate_bodies() -> None:
    body = article_html(3)
    for coding, data in [("gzip", gzip.compress(body)), ("deflate", zlib.compress(body)),
                         ("deflate", zlib.compress(body)[2:-4]),  # raw deflate, as some send
                         ("gzip", gzip.compress(body[:100]) + gzip.compress(body[100:]))]:
        def answer(request: httpx.Request, c: str = coding, d: bytes = data) -> httpx.Response:
            return html(d, content_encoding=c)

        page = fetch_one(answer)
        assert page.ok and page.body == body, coding


def test_bad_or_unknown_encodings() -> None:
    assert fetch_one(lambda r: html(b"not gzip", content_encoding="gzip")).status is \
        Reason.DECODE_ERROR
    assert fetch_one(lambda r: html(b"xx", content_encoding="br")).status is Reason.DECODE_ERROR


def test_bounded_decoder_caps_a_bomb_in_small_steps() -> None:
    bomb = gzip.compress(b" " * (16 * 1024 * 1024))  # 16 MiB -> ~16 KiB
    decoder = BoundedDecoder(["gzip"], 256 * 1024)
    with pytest.raises(BodyTooLarge):
        decoder.feed(bomb)
    assert len(decoder.out) <= 256 * 1024
    double = gzip.compress(bomb)  # Content-Encoding: gzip, gzip
    decoder = BoundedDecoder(["gzip", "gzip"], 256 * 1024)
    with pytest.raises(BodyTooLarge):
        decoder.feed(double)


def test_sniffing_helpers() -> None:
    assert looks_like_html(b"\xef\xbb\xbf\n <!DOCTYPE HTML><p>")
    assert looks_like_html(b"<html lang=en>") and not looks_like_html(b"<htmlish>")
    assert binary_kind(b"%PDF-1.7") == "PDF"
    assert binary_kind("<p>x</p>".encode("utf-16")) is None  # BOM: wide text, not binary
    assert binary_kind(b"<p>text\x00</p>") is not None
    assert binary_kind(b"<p>caf\xe9 cr\xe8me</p>") is None  # latin-1 is text
    assert declared_charset("text/html; Charset='Shift_JIS'") == "shift_jis"
    assert declared_charset("text/html") is None



def test_iter_fetch_streams_in_completion_order_and_waits_for_its_reader() -> None:
    started: list[str] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            started.append(request.url.path)
        if request.url.path == "/slow":
            time.sleep(0.5)
        return html()

    targets = [Target("http://news.example/slow", "s")] + [
        Target(f"http://news.example/{i}", "s") for i in range(10)
    ]
    p = policy(concurrency=2, per_host_concurrency=2)
    with Fetcher(p, transport=mock(handler), resolver=resolver) as fetcher:
        pages = iter_fetch(targets, fetcher)
        first = next(pages)
        assert first.url == "http://news.example/0"  # done before the slow one listed first
        time.sleep(0.2)
        # The reader holds the first page: the one thread still busy is the slow request, and
        # no further request started (two threads, at most that many pages done ahead).
        assert sorted(started) == ["/0", "/slow"]
        rest = list(pages)
    assert {page.url for page in [first, *rest]} == {t.url for t in targets}
    assert all(page.ok for page in [first, *rest])
