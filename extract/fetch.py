"""Fetching: Target -> FetchedPage, with a recorded reason for everything that goes wrong.

Why httpx rather than trafilatura's downloader (urllib3): trafilatura's timeouts are per socket
read, it sleeps on Retry-After inside the run and it follows redirects itself, so a server that
drips a byte every half second, or redirects to 127.0.0.1, owns the run. httpx lets us
- stream the body and stop at our own cap on *decompressed* bytes (`iter_raw` + a bounded
  decoder below: httpx's own decoder inflates a whole chunk at once);
- turn redirects off and walk them ourselves, so every hop goes through the address guard and
  robots.txt again;
- plug in a transport: tests pass `httpx.MockTransport`, and the production transport is
  httpcore's HTTP/1.1 connections, kept alive per origin (`OriginPool`), over
  `extract.guard.GuardedBackend`, which connects only to vetted addresses and bounds every
  socket operation by one total deadline per request (headers and body included).

Threads, not processes: fetching waits on sockets and releases the GIL; only lxml (in
extract/clean.py) needs processes.
"""

from __future__ import annotations

import email.utils
import functools
import socket
import ssl
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx

from extract import guard, warc
from extract.records import FetchedPage, Reason, Target, Validators
from extract.robots import RobotsAnswer, RobotsCache, RobotsVerdict, origin_of
from extract.urls import canonicalize

Clock = Callable[[], datetime]

DEFAULT_USER_AGENT = (
    "newsdedup/0.1 (+https://github.com/newsdedup/newsdedup; news deduplication for research; "
    "honours robots.txt)"
)
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
TRANSIENT_STATUSES = frozenset({502, 503, 504})

# Retry-After beyond this is clamped: a server saying "come back in 10**12 seconds" must not
# overflow datetime, and after a month a fresh try costs one request.
MAX_RETRY_AFTER = timedelta(days=30)
# Bytes inflated per step: bounds memory per step to 64 KiB however hard a gzip bomb compresses
# (deflate tops out near 1032:1, so a 64 KiB compressed read could otherwise inflate to ~66 MB
# in one call, as httpx's own decoder does).
STEP = 64 * 1024


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class FetchPolicy:
    """How politely and how defensively to fetch. Defaults suit the open web.

    max_bytes: 10 MiB of decompressed body. Calibrated on the 441 pages of
    ../shared/eval/extraction: median 64 KiB, p99 1.1 MiB, max 1.6 MiB decompressed, so the cap
    is ~6x the largest real article page seen and still bounds memory at
    concurrency x max_bytes = 16 x 10 MiB = 160 MiB in the worst case.
    total_timeout_s: 30 s for a whole request (connect, headers, body, every redirect hop);
    a 1.6 MiB page at a slow 1 Mbit/s takes ~13 s.
    """

    allow_private_networks: bool = False
    total_timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5  # RFC 9309 asks robots.txt fetchers to follow at least five
    user_agent: str = DEFAULT_USER_AGENT
    per_host_delay_s: float = 1.0
    per_host_concurrency: int = 2
    # Requests in flight at once over every host and every source of a run (one Fetcher).
    concurrency: int = 16
    respect_robots: bool = True
    retries: int = 1
    # First retry waits this long, then it doubles: transient blips (a 502 from a restarting
    # backend) usually clear within a second, and the wait is spent inside the run.
    retry_backoff_s: float = 0.25
    # robots.txt Crawl-delay is honoured up to this: a site asking for 60 s between pages
    # would stretch a 100-page feed to 100 minutes, so we cap and the run stays schedulable.
    max_crawl_delay_s: float = 10.0
    # Google reads the first 500 KiB of a robots.txt and ignores the rest; so do we.
    robots_max_bytes: int = 500 * 1024
    # Discovery (extract.sources): sitemap index recursion depth, sitemap documents per source,
    # targets per source. The sitemap protocol allows 50,000 URLs and 50 MiB per file.
    max_sitemap_depth: int = 3
    max_sitemaps: int = 100
    max_targets_per_source: int = 50_000
    max_document_bytes: int = 50 * 1024 * 1024

    def __post_init__(self) -> None:
        positive = {
            "total_timeout_s": self.total_timeout_s,
            "connect_timeout_s": self.connect_timeout_s,
            "max_bytes": self.max_bytes,
            "concurrency": self.concurrency,
            "per_host_concurrency": self.per_host_concurrency,
            "robots_max_bytes": self.robots_max_bytes,
            "max_sitemaps": self.max_sitemaps,
            "max_targets_per_source": self.max_targets_per_source,
            "max_document_bytes": self.max_document_bytes,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"FetchPolicy.{name} must be > 0, got {value!r}")
        non_negative = {
            "max_redirects": self.max_redirects,
            "per_host_delay_s": self.per_host_delay_s,
            "retries": self.retries,
            "retry_backoff_s": self.retry_backoff_s,
            "max_crawl_delay_s": self.max_crawl_delay_s,
            "max_sitemap_depth": self.max_sitemap_depth,
        }
        for name, value in non_negative.items():
            if value < 0:
                raise ValueError(f"FetchPolicy.{name} must be >= 0, got {value!r}")
        if self.connect_timeout_s > self.total_timeout_s:
            raise ValueError(
                f"FetchPolicy.connect_timeout_s ({self.connect_timeout_s}) exceeds "
                f"total_timeout_s ({self.total_timeout_s}): lower it or raise the total"
            )
        if self.per_host_concurrency > self.concurrency:
            raise ValueError(
                f"FetchPolicy.per_host_concurrency ({self.per_host_concurrency}) exceeds "
                f"concurrency ({self.concurrency}): a host cannot use more workers than exist"
            )
        ua = self.user_agent.strip()
        if "/" not in ua.split()[0] if ua else True:
            raise ValueError(
                "FetchPolicy.user_agent must start with a product token such as "
                f"'newsdedup/0.1', got {self.user_agent!r}; e.g. {DEFAULT_USER_AGENT!r}"
            )
        if "http" not in ua and "@" not in ua:
            raise ValueError(
                "FetchPolicy.user_agent must carry a contact URL or e-mail so site owners "
                f"can reach you, got {self.user_agent!r}; e.g. {DEFAULT_USER_AGENT!r}"
            )


# --- Politeness ----------------------------------------------------------------------------


class HostLimiter:
    """At most `concurrency` requests in flight per host, `delay_s` between their starts, and
    at most `total` in flight over every host (None: no overall cap).

    The overall slot is taken after the host's: a worker queueing behind a busy host holds no
    overall slot, so one slow host cannot starve the others; at most `concurrency` workers per
    host hold one while they wait out the host's delay."""

    def __init__(
        self,
        concurrency: int,
        delay_s: float,
        *,
        total: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._concurrency = concurrency
        self._delay_s = delay_s
        self._sleep = sleep
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._slots: dict[str, threading.Semaphore] = {}
        self._next_start: dict[str, float] = defaultdict(float)
        self._total = threading.Semaphore(total) if total is not None else None

    @contextmanager
    def slot(self, host: str, delay_s: float | None = None) -> Iterator[None]:
        with self._lock:
            sem = self._slots.setdefault(host, threading.Semaphore(self._concurrency))
        with sem, self._total or nullcontext():
            gap = self._delay_s if delay_s is None else max(self._delay_s, delay_s)
            with self._lock:
                now = self._monotonic()
                start = max(now, self._next_start[host])
                self._next_start[host] = start + gap
            if start > now:
                self._sleep(start - now)
            yield


# --- Body decoding -------------------------------------------------------------------------


class BodyTooLarge(Exception):
    pass


class _DeadlinePassed(Exception):
    pass


class _UnsupportedEncoding(Exception):
    pass


class BoundedDecoder:
    """Undo Content-Encoding (gzip, deflate; stacked or multi-member) without ever producing
    more than `limit` bytes in total or more than STEP bytes per inflate call."""

    def __init__(self, codings: Sequence[str], limit: int) -> None:
        self._codings = [c for c in codings if c not in ("", "identity")]
        for coding in self._codings:
            if coding not in ("gzip", "x-gzip", "deflate"):
                raise _UnsupportedEncoding(coding)
        # Content-Encoding lists codings in the order applied; undo them last-first.
        self._codings.reverse()
        self._stages: list[Any] = [None] * len(self._codings)
        self._limit = limit
        self.out = bytearray()

    def feed(self, data: bytes) -> None:
        self._pump(0, data)

    def _pump(self, i: int, data: bytes) -> None:
        if i == len(self._codings):
            if len(self.out) + len(data) > self._limit:
                raise BodyTooLarge
            self.out += data
            return
        while True:
            d = self._stages[i]
            if d is None:
                if not data:
                    return
                d = self._stages[i] = _decompressor(self._codings[i], data)
            chunk = d.decompress(data, STEP)
            data = d.unconsumed_tail
            if chunk:
                self._pump(i + 1, chunk)
            if d.eof:
                rest = d.unused_data
                self._stages[i] = None
                if rest[:2] != b"\x1f\x8b":  # not another gzip member: trailing junk, ignored
                    return
                data = rest
                continue
            if not data and len(chunk) < STEP:
                return


def _decompressor(coding: str, head: bytes) -> Any:
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header, auto-detected
    # "deflate" should be zlib-wrapped (RFC 9110 8.4.1.2) but some servers send raw deflate.
    zlib_header = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
    return zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)


# --- Content sniffing ----------------------------------------------------------------------

# WHATWG MIME sniffing, "rules for identifying an unknown MIME type": the HTML tag patterns.
_HTML_OPENINGS = (
    b"<!doctype html", b"<html", b"<head", b"<script", b"<iframe", b"<h1", b"<div", b"<font",
    b"<table", b"<a", b"<style", b"<title", b"<b", b"<body", b"<br", b"<p",
)
_TAG_ENDS = frozenset({b"", b" ", b">", b"\t", b"\n", b"\r", b"\x0c", b"/"})
_BINARY_MAGIC = {
    b"%PDF-": "PDF", b"PK\x03\x04": "ZIP", b"\x89PNG": "PNG", b"GIF8": "GIF",
    b"\xff\xd8\xff": "JPEG", b"\x1f\x8b": "gzip", b"RIFF": "RIFF", b"\x00\x00\x00": "binary",
}
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff")
# Bytes that never occur in text: C0 controls other than TAB, LF, FF, CR and ESC. Random bytes
# have 27/256 = 10.5% of them; the 441 eval pages have none, so 1% leaves a wide margin.
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))
_NOT_CONTROL = bytes(b for b in range(256) if b not in _CONTROL)  # deleted to count the rest
_CONTROL_SHARE = 0.01
_SNIFF_BYTES = 4096  # chance that 4 KiB of random bytes has no NUL: (255/256)**4096 ~ 1e-7


def looks_like_html(body: bytes) -> bool:
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n\x0c").lower()
    if head.startswith(b"<?xml"):
        return b"<html" in body[:4096].lower()
    if head.startswith(b"<!--"):
        return True
    return any(
        head.startswith(tag) and head[len(tag): len(tag) + 1] in _TAG_ENDS
        for tag in _HTML_OPENINGS
    )


def binary_kind(body: bytes, encoding: str | None = None) -> str | None:
    """What binary content `body` looks like (e.g. 'PDF'), or None when it may be text."""
    head = body[:_SNIFF_BYTES]
    for magic, kind in _BINARY_MAGIC.items():
        if head.startswith(magic):
            return kind
    if head.startswith(_WIDE_BOMS) or (encoding or "").startswith(("utf-16", "utf-32")):
        return None  # UTF-16/32 text is full of NULs
    if b"\x00" in head:
        return "binary (NUL bytes)"
    controls = len(head.translate(None, _NOT_CONTROL))
    if head and controls / len(head) > _CONTROL_SHARE:
        return f"binary ({controls}/{len(head)} control bytes)"
    return None


def media_type(content_type: str | None) -> str | None:
    value = (content_type or "").split(";", 1)[0].strip().lower()
    return value or None


def declared_charset(content_type: str | None) -> str | None:
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip("'\"").strip().lower() or None
    return None


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """Retry-After as an absolute time (RFC 9110 10.2.3: delay-seconds or an HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        delay = min(timedelta(seconds=int(value[:12])), MAX_RETRY_AFTER)
        return now + delay
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(when, now), now + MAX_RETRY_AFTER)


# --- The fetcher ---------------------------------------------------------------------------


def is_html(media: str) -> bool:
    return media in HTML_TYPES


@functools.lru_cache(maxsize=1)
def default_ssl_context() -> ssl.SSLContext:
    """certifi's roots, loaded once per process: load_verify_locations alone measured 50-170 ms
    here, paid by every fetch_all and discover call otherwise."""
    return httpx.create_ssl_context(trust_env=False)


class OriginPool:
    """Keep-alive HTTP/1.1 connections, idle ones kept per origin; what GuardedTransport sends
    requests through.

    In place of httpcore.ConnectionPool, which re-examines every pooled connection (a poll()
    on each idle socket) whenever a request starts or ends, under one lock that every fetch
    thread takes: with 16 connections, fetching 4,000 local pages from eight sources at once
    cost ~1.9 ms of CPU a page, and most fetch threads were found waiting on that lock. Here a
    request takes an idle connection of its origin (checking only that one) or opens a new one;
    no queue is needed, since the Fetcher's limits already bound the requests in flight. At most
    `max_idle_per_origin` idle connections are kept per origin; a connection the server closed
    or that idled past `keepalive_expiry` is dropped when next taken."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        network_backend: httpcore.NetworkBackend,
        max_idle_per_origin: int,
        keepalive_expiry: float,
    ) -> None:
        self._ssl_context = ssl_context
        self._backend = network_backend
        self._max_idle = max_idle_per_origin
        self._expiry = keepalive_expiry
        self._lock = threading.Lock()
        # httpcore.Origin is not hashable: keyed by (scheme, host, port).
        self._idle: dict[tuple[bytes, bytes, int], list[httpcore.HTTPConnection]] = (
            defaultdict(list)
        )
        self._closed = False

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        origin = request.url.origin
        key = (origin.scheme, origin.host, origin.port)
        connection = self._take(key)
        if connection is None:
            connection = httpcore.HTTPConnection(
                origin, ssl_context=self._ssl_context, keepalive_expiry=self._expiry,
                network_backend=self._backend,
            )
        try:
            response = connection.handle_request(request)
        except BaseException:
            connection.close()
            raise
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=_ReturningStream(response.stream, connection, key, self),
            extensions=response.extensions,
        )

    def _take(self, key: tuple[bytes, bytes, int]) -> httpcore.HTTPConnection | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                connection = idle.pop()
            if not connection.has_expired():
                return connection
            connection.close()

    def give_back(
        self, connection: httpcore.HTTPConnection, key: tuple[bytes, bytes, int]
    ) -> None:
        """A connection whose response is closed: kept if it can serve another request."""
        if connection.is_idle() and not connection.has_expired():
            with self._lock:
                idle = self._idle[key]
                if not self._closed and len(idle) < self._max_idle:
                    idle.append(connection)
                    return
        connection.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for connection in connections:
            connection.close()

    def __enter__(self) -> OriginPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ReturningStream:
    """A response body that hands its connection back to the pool once it is closed."""

    def __init__(
        self,
        stream: Any,
        connection: httpcore.HTTPConnection,
        key: tuple[bytes, bytes, int],
        pool: OriginPool,
    ) -> None:
        self._stream = stream
        self._connection = connection
        self._key = key
        self._pool = pool
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                if hasattr(self._stream, "close"):
                    self._stream.close()
            finally:
                self._pool.give_back(self._connection, self._key)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over an OriginPool that connects through `guard.GuardedBackend`.

    httpx.HTTPTransport has no network_backend parameter, so the pool it builds is replaced;
    tests/extract/test_guard.py pins this against an httpx upgrade."""

    def __init__(
        self,
        policy: FetchPolicy,
        resolver: guard.Resolver = socket.getaddrinfo,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        # certifi's roots by default; a caller behind a corporate CA (or a test) passes one.
        context = ssl_context or default_ssl_context()
        super().__init__(verify=context, trust_env=False, retries=0)
        self._pool.close()
        self._pool = OriginPool(  # type: ignore[assignment]
            context,
            guard.GuardedBackend(policy.allow_private_networks, resolver),
            max_idle_per_origin=policy.per_host_concurrency,
            keepalive_expiry=5.0,
        )


@dataclass
class _Redirect:
    location: str
    status: int


@dataclass
class _Result:
    """One attempt's outcome: a page, and whether trying again could change it."""

    page: FetchedPage
    transient: bool = False
    timed_out: bool = False


@dataclass
class _Request:
    url: str
    source: str
    accept: Callable[[str], bool] = is_html
    max_bytes: int = 0
    truncate: bool = False
    check_robots: bool = True
    validators: Validators | None = None
    title_hint: str | None = None
    published_hint: datetime | None = None


class Fetcher:
    """One run's HTTP machinery: a client, per-host limits, the overall limit
    (policy.concurrency requests in flight, however many threads call it) and a robots.txt
    cache.

    Thread-safe; `fetch_all` shares one across its workers, and a flow run shares one across
    its sources, so that the limits hold for the run, not per source."""

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        transport: httpx.BaseTransport | None = None,
        resolver: guard.Resolver = socket.getaddrinfo,
        clock: Clock = utc_now,
    ) -> None:
        self.policy = policy
        self._resolver = resolver
        self._clock = clock
        # Requests go to the transport directly, not through an httpx.Client: this Fetcher
        # walks redirects itself and needs no auth, proxies or event hooks, and the client's
        # layer (merging URLs and headers, its auth and redirect generators, a cookie pass
        # over every response) cost 0.35-0.45 ms of CPU a request fetched alone on 127.0.0.1
        # (1.1 -> 0.64-0.75 ms a page), ~0.27 ms with eight sources fetching at once. Cookies
        # are still kept for the run, as a client keeps them: a site that sets one and
        # redirects to check it must not become a redirect loop.
        self._transport = (
            transport if transport is not None else GuardedTransport(policy, resolver)
        )
        self._cookies = httpx.Cookies()
        self._headers = {
            "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
            "Accept-Encoding": "gzip, deflate",
            "Connection": "keep-alive",
            "User-Agent": policy.user_agent,
        }
        self._limiter = HostLimiter(
            policy.per_host_concurrency, policy.per_host_delay_s, total=policy.concurrency
        )
        self.robots = RobotsCache(self._fetch_robots, policy.user_agent)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Public entry points ---------------------------------------------------------------

    def fetch(self, target: Target, validators: Validators | None = None) -> FetchedPage:
        """Fetch one article page. Never raises for the page's own problems."""
        return self._guarded(
            _Request(
                target.url,
                target.source,
                max_bytes=self.policy.max_bytes,
                check_robots=self.policy.respect_robots,
                validators=validators,
                title_hint=target.title_hint,
                published_hint=target.published_hint,
            )
        )

    def fetch_document(
        self, url: str, source: str, accept: Callable[[str], bool], max_bytes: int | None = None
    ) -> FetchedPage:
        """Fetch a discovery document (feed, sitemap). Guarded like a page; robots.txt is not
        consulted because the user named this URL themselves (as Google's Feedfetcher does)."""
        return self._guarded(
            _Request(
                url,
                source,
                accept=accept,
                max_bytes=max_bytes or self.policy.max_document_bytes,
                check_robots=False,
            )
        )

    # Internals -------------------------------------------------------------------------

    def _guarded(self, req: _Request) -> FetchedPage:
        try:
            return self._with_retries(req)
        except Exception as exc:  # noqa: BLE001 - a bug must cost one page, not the run
            return self._page(
                req, req.url, Reason.CONNECT_ERROR, 0.0, detail=f"unexpected {exc!r}"
            )

    def _with_retries(self, req: _Request) -> FetchedPage:
        timeouts = 0
        attempt = 0
        first_start = time.monotonic()
        while True:
            attempt += 1
            result = self._attempt(req)
            timeouts += result.timed_out
            again = (
                result.transient
                and attempt <= self.policy.retries
                and not (result.timed_out and timeouts > 1)  # a timeout is retried once at most
            )
            if not again:  # elapsed_s covers every attempt and the back-off between them
                elapsed = round(time.monotonic() - first_start, 3)
                return _with(result.page, attempt=attempt, elapsed_s=elapsed)
            time.sleep(self.policy.retry_backoff_s * 2 ** (attempt - 1))

    def _attempt(self, req: _Request) -> _Result:
        started = time.monotonic()
        budget = self.policy.total_timeout_s
        active = 0.0  # seconds spent on DNS and requests; queueing for a host slot excluded
        current = req.url
        seen = {current}
        hops = 0
        while True:
            left = budget - active
            if left <= 0:
                return self._fail(req, current, Reason.TIMEOUT, started,
                                  f"deadline passed after {hops} redirect(s)", timed_out=True)
            where = f" (redirect hop {hops})" if hops else ""
            check_start = time.monotonic()
            try:
                guard.check_url(
                    current,
                    self.policy.allow_private_networks,
                    self._resolver,
                    timeout=min(left, self.policy.connect_timeout_s),
                )
            except guard.GuardError as exc:
                return self._guard_failure(req, current, exc, started, where)
            active += time.monotonic() - check_start
            delay = None
            if req.check_robots:
                verdict = self._robots(current)
                if not verdict.allowed:
                    reason = Reason(verdict.failure) if verdict.failure else Reason.ROBOTS
                    return self._fail(req, current, reason, started, verdict.detail + where)
                if verdict.crawl_delay_s:
                    delay = min(verdict.crawl_delay_s, self.policy.max_crawl_delay_s)
            with self._limiter.slot(origin_of(current), delay):
                # Time spent queueing for the host's slot is politeness, not the server's
                # slowness, so the deadline runs only while the request does.
                hop_start = time.monotonic()
                outcome = self._request(req, current, hops, hop_start + budget - active, started)
                active += time.monotonic() - hop_start
            if not isinstance(outcome, _Redirect):
                return outcome
            hops += 1
            nxt = urljoin(current, outcome.location.strip())
            if nxt in seen:
                return self._fail(req, nxt, Reason.TOO_MANY_REDIRECTS, started,
                                  f"redirect loop: {current} -> {nxt}")
            if hops > self.policy.max_redirects:
                return self._fail(req, nxt, Reason.TOO_MANY_REDIRECTS, started,
                                  f"more than {self.policy.max_redirects} redirects")
            seen.add(nxt)
            current = nxt

    def _robots(self, url: str) -> RobotsVerdict:
        try:
            guard.split_url(url)
        except guard.GuardError:
            return RobotsVerdict(True)
        return self.robots.check(url)

    def _fetch_robots(self, url: str) -> RobotsAnswer:
        page = self._attempt(
            _Request(url, "robots", accept=lambda _m: True,
                     max_bytes=self.policy.robots_max_bytes, truncate=True, check_robots=False)
        ).page
        if page.status in (Reason.OK, Reason.EMPTY):
            return RobotsAnswer(page.http_status or 200, page.body)
        if page.http_status is not None and page.status is not Reason.DECODE_ERROR:
            return RobotsAnswer(page.http_status)  # 4xx/5xx/429 (DEFERRED included)
        if page.status in (Reason.TOO_MANY_REDIRECTS, Reason.DECODE_ERROR):
            # RFC 9309 2.3.1.2: past five redirects it "MAY assume that the robots.txt is
            # unavailable"; an undecodable one has no rules either. Both: allow all.
            return RobotsAnswer(404)
        return RobotsAnswer(None, failure=page.status.value, detail=page.detail)

    def _request(
        self, req: _Request, url: str, hops: int, deadline: float, started: float
    ) -> _Result | _Redirect:
        headers = self._headers
        if hops == 0 and req.validators is not None:
            headers = dict(headers)
            if req.validators.etag:
                headers["If-None-Match"] = req.validators.etag
            if req.validators.last_modified:
                headers["If-Modified-Since"] = req.validators.last_modified
        left = max(deadline - time.monotonic(), 0.001)
        timeout = httpx.Timeout(left, connect=min(self.policy.connect_timeout_s, left))
        guard.set_deadline(deadline)
        try:
            request = httpx.Request(
                "GET", url, headers=headers, extensions={"timeout": timeout.as_dict()}
            )
            if self._cookies.jar:  # none set yet: skip the jar's pass over the request
                self._cookies.set_cookie_header(request)
            resp = self._transport.handle_request(request)
            try:
                resp.request = request
                if "set-cookie" in resp.headers:
                    self._cookies.extract_cookies(resp)
                return self._response(req, url, resp, deadline, started)
            finally:
                resp.close()
        except (httpx.ConnectTimeout, httpcore.ConnectTimeout) as exc:
            return self._fail(req, url, Reason.TIMEOUT, started,
                              f"no connection within {self.policy.connect_timeout_s:g}s "
                              f"({type(exc).__name__})", transient=True, timed_out=True)
        except (httpx.TimeoutException, httpcore.TimeoutException, _DeadlinePassed) as exc:
            return self._fail(req, url, Reason.TIMEOUT, started,
                              f"no complete answer within {self.policy.total_timeout_s:g}s "
                              f"({type(exc).__name__})", transient=True, timed_out=True)
        except guard.GuardError as exc:  # raised by GuardedBackend at connect time
            return self._guard_failure(req, url, exc, started, f" (redirect hop {hops})"
                                       if hops else "")
        except httpx.DecodingError as exc:
            return self._fail(req, url, Reason.DECODE_ERROR, started, str(exc))
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return self._fail(req, url, Reason.BAD_URL, started, str(exc))
        except (httpx.TransportError, httpcore.NetworkError, OSError) as exc:
            return self._fail(req, url, Reason.CONNECT_ERROR, started,
                              f"{type(exc).__name__}: {exc}", transient=True)
        finally:
            guard.set_deadline(None)

    def _response(
        self, req: _Request, url: str, resp: httpx.Response, deadline: float, started: float
    ) -> _Result | _Redirect:
        status = resp.status_code
        h = resp.headers
        common: dict[str, Any] = {
            "http_status": status,
            "content_type": h.get("content-type"),
            "etag": h.get("etag"),
            "last_modified": h.get("last-modified"),
        }
        if status in REDIRECT_STATUSES:
            location = h.get("location")
            if location:
                return _Redirect(location, status)
            return self._fail(req, url, Reason.HTTP_ERROR, started,
                              f"{status} without Location", **common)
        if status == 304:
            return self._fail(req, url, Reason.NOT_MODIFIED, started, "", **common)
        if status in (429, 503):
            when = parse_retry_after(h.get("retry-after"), self._clock())
            if when is not None:
                return self._fail(req, url, Reason.DEFERRED, started,
                                  f"{status} Retry-After: {h.get('retry-after')}",
                                  retry_after=when, **common)
        if not 200 <= status < 300:  # 4xx, 5xx, and 3xx that are not redirects (300, 305)
            return self._fail(req, url, Reason.HTTP_ERROR, started, f"HTTP {status}",
                              transient=status in TRANSIENT_STATUSES, **common)
        media = media_type(common["content_type"])
        if media is not None and not req.accept(media):
            return self._fail(req, url, Reason.NOT_HTML, started,
                              f"Content-Type {media}", **common)
        if status == 204:
            return self._fail(req, url, Reason.EMPTY, started, "204 No Content", **common)
        declared = h.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > req.max_bytes and not req.truncate:
            return self._fail(req, url, Reason.TOO_LARGE, started,
                              f"Content-Length {declared} > max_bytes {req.max_bytes}", **common)
        codings = [c.strip().lower() for c in h.get("content-encoding", "").split(",")]
        chunks: Iterable[bytes]
        if resp.is_stream_consumed:
            # httpx.Response(content=...) (a MockTransport's answer) arrives read and decoded.
            codings, chunks = [], [resp.content]
        else:
            # No chunk_size: httpx would buffer up to it; httpcore reads at most 64 KiB a time.
            chunks = resp.iter_raw()
        try:
            decoder = BoundedDecoder(codings, req.max_bytes)
        except _UnsupportedEncoding as exc:
            return self._fail(req, url, Reason.DECODE_ERROR, started,
                              f"unsupported Content-Encoding {exc}", **common)
        wire = 0
        try:
            for raw in chunks:
                if time.monotonic() > deadline:
                    raise _DeadlinePassed
                wire += len(raw)
                if wire > req.max_bytes:  # compressed bytes never outnumber inflated ones
                    raise BodyTooLarge
                decoder.feed(raw)
        except BodyTooLarge:
            if not req.truncate:
                return self._fail(req, url, Reason.TOO_LARGE, started,
                                  f"body over max_bytes {req.max_bytes} after decompression",
                                  n_bytes=len(decoder.out), **common)
        except zlib.error as exc:
            return self._fail(req, url, Reason.DECODE_ERROR, started,
                              f"bad {','.join(codings)} body: {exc}", **common)
        body = bytes(decoder.out)
        if not body:
            return self._fail(req, url, Reason.EMPTY, started, "empty body", **common)
        encoding = declared_charset(common["content_type"])
        if req.accept is is_html:
            if media is None and not looks_like_html(body):
                return self._fail(req, url, Reason.NOT_HTML, started,
                                  "no Content-Type and the body does not look like HTML",
                                  n_bytes=len(body), **common)
            kind = binary_kind(body, encoding)
            if kind is not None:
                return self._fail(req, url, Reason.NOT_HTML, started,
                                  f"declared {media or 'nothing'} but the body is {kind}",
                                  n_bytes=len(body), **common)
        page = self._page(req, url, Reason.OK, started, body=body, n_bytes=len(body),
                          encoding=encoding, **common)
        return _Result(page)

    def _guard_failure(
        self, req: _Request, url: str, exc: guard.GuardError, started: float, where: str
    ) -> _Result:
        reason = {
            guard.BlockedAddress: Reason.BLOCKED_ADDRESS,
            guard.BadScheme: Reason.BAD_SCHEME,
            guard.BadURL: Reason.BAD_URL,
            guard.ResolutionError: Reason.CONNECT_ERROR,
        }.get(type(exc), Reason.BAD_URL)
        return self._fail(req, url, reason, started, f"{exc}{where}",
                          transient=reason is Reason.CONNECT_ERROR)

    def _fail(
        self,
        req: _Request,
        url: str,
        reason: Reason,
        started: float,
        detail: str,
        *,
        transient: bool = False,
        timed_out: bool = False,
        **fields: Any,
    ) -> _Result:
        return _Result(self._page(req, url, reason, started, detail=detail, **fields),
                       transient=transient, timed_out=timed_out)

    def _page(
        self, req: _Request, final_url: str, status: Reason, started: float, **fields: Any
    ) -> FetchedPage:
        return FetchedPage(
            url=req.url,
            final_url=final_url,
            source=req.source,
            status=status,
            fetched_at=self._clock(),
            elapsed_s=round(time.monotonic() - started, 3) if started else 0.0,
            title_hint=req.title_hint,
            published_hint=req.published_hint,
            **fields,
        )


def _with(page: FetchedPage, **changes: Any) -> FetchedPage:
    return replace(page, **changes)


# --- Batch ---------------------------------------------------------------------------------

_NO_VALIDATORS: Mapping[str, Validators] = MappingProxyType({})


def page_from_body(target: Target, policy: FetchPolicy, clock: Clock = utc_now) -> FetchedPage:
    """A Target whose bytes are already held (local file, WARC record) as a FetchedPage."""
    body = target.body or b""
    content_type = target.content_type or "text/html"
    status, detail = Reason.OK, ""
    if not body:
        status, detail = Reason.EMPTY, "empty body"
    elif len(body) > policy.max_bytes:
        status, detail = Reason.TOO_LARGE, f"{len(body)} bytes > max_bytes {policy.max_bytes}"
    return FetchedPage(
        url=target.url,
        final_url=target.url,
        source=target.source,
        status=status,
        fetched_at=clock(),
        body=body if status is Reason.OK else b"",
        content_type=content_type,
        encoding=declared_charset(content_type),
        n_bytes=len(body),
        detail=detail,
        title_hint=target.title_hint,
        published_hint=target.published_hint,
    )


def read_local(target: Target, max_bytes: int) -> bytes:
    """The bytes of a page held on this machine (`local_path`, maybe `warc_offset`): gunzipped
    (.html.gz) and at most `max_bytes`. Raises BodyTooLarge, ValueError (undecodable), OSError."""
    assert target.local_path is not None
    if target.warc_offset is not None:
        try:
            return warc.read_record(target.local_path, target.warc_offset, max_bytes)
        except warc.RecordTooLarge:
            raise BodyTooLarge from None
    with open(target.local_path, "rb") as f:
        raw = f.read(max_bytes + 1)
    if len(raw) > max_bytes:  # compressed or not, the page is bigger than that
        raise BodyTooLarge
    if raw[:2] != b"\x1f\x8b":
        return raw
    decoder = BoundedDecoder(["gzip"], max_bytes)
    try:
        decoder.feed(raw)
    except zlib.error as exc:
        raise ValueError(f"bad gzip: {exc}") from None
    return bytes(decoder.out)


def page_from_local(target: Target, policy: FetchPolicy, clock: Clock = utc_now) -> FetchedPage:
    """A Target held on this machine as a FetchedPage, read now (never over HTTP)."""
    started = time.monotonic()
    try:
        body = read_local(target, policy.max_bytes)
    except BodyTooLarge:
        reason, detail = Reason.TOO_LARGE, f"over max_bytes {policy.max_bytes}"
    except ValueError as exc:
        reason, detail = Reason.DECODE_ERROR, str(exc)[:300]
    except OSError as exc:
        reason, detail = Reason.BAD_URL, f"cannot read {target.local_path}: {exc.strerror or exc}"
    else:
        page = page_from_body(replace(target, body=body), policy, clock)
        return replace(page, elapsed_s=round(time.monotonic() - started, 3))
    return FetchedPage(
        url=target.url, final_url=target.url, source=target.source, status=reason,
        fetched_at=clock(), content_type=target.content_type, detail=detail,
        elapsed_s=round(time.monotonic() - started, 3),
        title_hint=target.title_hint, published_hint=target.published_hint,
    )


def interleave_by_host(indices: list[int], targets: Sequence[Target]) -> list[int]:
    """Round-robin over hosts, so that workers do not all queue on one host's slots while
    other hosts wait."""
    by_host: dict[str, list[int]] = defaultdict(list)
    for i in indices:
        by_host[origin_of(targets[i].url)].append(i)
    queues = list(by_host.values())
    order: list[int] = []
    depth = 0
    while len(order) < len(indices):
        for queue in queues:
            if depth < len(queue):
                order.append(queue[depth])
        depth += 1
    return order


def fetch_all(
    targets: Sequence[Target],
    policy: FetchPolicy,
    validators: Mapping[str, Validators] = _NO_VALIDATORS,
    *,
    transport: httpx.BaseTransport | None = None,
    clock: Clock = utc_now,
    resolver: guard.Resolver = socket.getaddrinfo,
    fetcher: Fetcher | None = None,
) -> list[FetchedPage]:
    """One FetchedPage per target, in input order; never raises for a page's problem.

    Pass one `fetcher` (a `Fetcher(policy)`, closed by the caller) to every call of a run to
    share its robots.txt cache and per-host limits across sources fetched at the same time;
    otherwise each call has its own (and `transport`, `resolver` configure it).

    Targets with `body` or `local_path` set skip HTTP (local files and WARC records are read
    in the workers). A URL repeated (by canonical form) is fetched once and its repeats are
    recorded as Reason.DUPLICATE_URL. `validators` maps a URL (as given, or canonical) to what
    its last fetch returned, for a conditional GET."""
    results: list[FetchedPage | None] = [None] * len(targets)
    first_seen: dict[str, int] = {}
    to_fetch: list[int] = []
    for i, target in enumerate(targets):
        key = canonicalize(target.url)
        if key in first_seen:
            results[i] = FetchedPage(
                url=target.url, final_url=target.url, source=target.source,
                status=Reason.DUPLICATE_URL, fetched_at=clock(),
                detail=f"same canonical URL as target {first_seen[key]}",
                title_hint=target.title_hint, published_hint=target.published_hint,
            )
            continue
        first_seen[key] = i
        if target.body is not None:
            results[i] = page_from_body(target, policy, clock)
        else:
            to_fetch.append(i)
    if not to_fetch:
        return [page for page in results if page is not None]
    own = fetcher is None
    active = fetcher or Fetcher(policy, transport=transport, resolver=resolver, clock=clock)

    def work(i: int) -> FetchedPage:
        if targets[i].local_path is not None:
            return page_from_local(targets[i], policy, clock)
        url = targets[i].url
        v = validators.get(url) or validators.get(canonicalize(url))
        return active.fetch(targets[i], v)

    try:
        if len(to_fetch) == 1:  # the flow fetches URL by URL: no thread pool for one request
            results[to_fetch[0]] = work(to_fetch[0])
        else:
            workers = min(policy.concurrency, len(to_fetch))
            with ThreadPoolExecutor(workers, thread_name_prefix="newsdedup-fetch") as pool:
                order = interleave_by_host(to_fetch, targets)
                for i, page in zip(order, pool.map(work, order), strict=True):
                    results[i] = page
    finally:
        if own:
            active.close()
    return [page for page in results if page is not None]
