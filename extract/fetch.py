"""Fetching: Targets -> FetchedPages, one streaming step, with a recorded reason for everything
that goes wrong.

    with Fetcher(policy) as fetcher:
        for page in iter_fetch(targets, fetcher, validators):  # in completion order
            ...

`Fetcher` is one run's HTTP machinery (per-host and overall limits, robots.txt, cookies, the
transport); discovery (feeds, sitemaps) and pages share it. `iter_fetch` fetches a source's
targets on threads through it and yields each page as soon as it is done; local files and
WARC records are read on the same threads (extract.local), held bodies passed on at once.

Why httpx rather than trafilatura's downloader (urllib3): trafilatura's timeouts are per socket
read, it sleeps on Retry-After inside the run and it follows redirects itself, so a server that
drips a byte every half second, or redirects to 127.0.0.1, owns the run. httpx lets us
- stream the raw body and stop at our own cap on *decompressed* bytes (extract.body);
- turn redirects off and walk them ourselves, so every hop goes through the address guard and
  robots.txt again;
- plug in a transport: tests pass `httpx.MockTransport`, production uses
  extract.http.GuardedTransport (guarded connections, one total deadline per request).

Threads, not processes: fetching waits on sockets and releases the GIL; only lxml (in
extract/clean.py) needs processes.
"""

from __future__ import annotations

import socket
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, ParamSpec, cast
from urllib.parse import urljoin

import httpcore
import httpx

from extract import guard
from extract.body import (
    BodyTooLarge,
    BoundedDecoder,
    UnsupportedEncoding,
    binary_kind,
    declared_charset,
    is_html,
    looks_like_html,
    media_type,
)
from extract.http import GuardedTransport, set_deadline
from extract.local import page_from_body, page_from_local
from extract.policy import FetchPolicy, HostLimiter, deferred_until, parse_retry_after
from extract.records import Clock, FetchedPage, Reason, Target, Validators, utc_now
from extract.robots import RobotsAnswer, RobotsCache, RobotsVerdict, origin_of
from extract.urls import canonicalize

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
TRANSIENT_STATUSES = frozenset({502, 503, 504})

_NO_VALIDATORS: Mapping[str, Validators] = MappingProxyType({})
_NOT_BEFORE: Mapping[str, datetime] = MappingProxyType({})
_P = ParamSpec("_P")


class DeadlinePassed(Exception):
    """The request's total deadline passed while its body was being read."""


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

    Thread-safe: `iter_fetch` shares one across its threads, and a flow run shares one across
    its sources and their discovery (feeds, sitemaps), so that the limits hold for the run."""

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        transport: httpx.BaseTransport | None = None,
        resolver: guard.Resolver = socket.getaddrinfo,
        clock: Clock = utc_now,
    ) -> None:
        self.policy = policy
        self.clock = clock
        self._resolver = resolver
        # Requests go to the transport (httpx's public extension point), not through an
        # httpx.Client: this Fetcher walks redirects itself, every hop through the address
        # guard and robots.txt, and needs no auth, proxies or event hooks. Cookies are still
        # kept for the run, as a client keeps them: a site that sets one and redirects to
        # check it must not become a redirect loop.
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
                return replace(result.page, attempt=attempt, elapsed_s=elapsed)
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
        set_deadline(deadline)
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
        except (httpx.TimeoutException, httpcore.TimeoutException, DeadlinePassed) as exc:
            return self._fail(req, url, Reason.TIMEOUT, started,
                              f"no complete answer within {self.policy.total_timeout_s:g}s "
                              f"({type(exc).__name__})", transient=True, timed_out=True)
        except guard.GuardError as exc:  # raised by GuardedBackend at connect time
            return self._guard_failure(req, url, exc, started, f" (redirect hop {hops})"
                                       if hops else "")
        except httpx.DecodingError as exc:
            return self._fail(req, url, Reason.DECODE_ERROR, started, str(exc))
        except httpx.InvalidURL as exc:
            return self._fail(req, url, Reason.BAD_URL, started, str(exc))
        except (httpx.UnsupportedProtocol, httpcore.UnsupportedProtocol) as exc:
            return self._fail(req, url, Reason.BAD_URL, started, str(exc))
        except (httpx.TransportError, httpcore.NetworkError, httpcore.ProtocolError,
                OSError) as exc:
            return self._fail(req, url, Reason.CONNECT_ERROR, started,
                              f"{type(exc).__name__}: {exc}", transient=True)
        finally:
            set_deadline(None)

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
            when = parse_retry_after(h.get("retry-after"), self.clock())
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
        # The raw bytes as the transport gives them (httpcore reads at most 64 KiB a time), for
        # every transport alike: a MockTransport's answer goes through the same bounded decoder.
        chunks = cast(Iterable[bytes], resp.stream)
        try:
            decoder = BoundedDecoder(codings, req.max_bytes)
        except UnsupportedEncoding as exc:
            return self._fail(req, url, Reason.DECODE_ERROR, started,
                              f"unsupported Content-Encoding {exc}", **common)
        wire = 0
        try:
            for raw in chunks:
                if time.monotonic() > deadline:
                    raise DeadlinePassed
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
            fetched_at=self.clock(),
            elapsed_s=round(time.monotonic() - started, 3) if started else 0.0,
            title_hint=req.title_hint,
            published_hint=req.published_hint,
            **fields,
        )


# --- The streaming step ----------------------------------------------------------------------


def interleave_by_host(targets: Sequence[Target]) -> list[int]:
    """Positions of `targets`, round-robin over hosts, so that the threads do not all queue on
    one host's slots while other hosts wait."""
    by_host: dict[str, list[int]] = defaultdict(list)
    for i, target in enumerate(targets):
        by_host[origin_of(target.url)].append(i)
    queues = list(by_host.values())
    order: list[int] = []
    depth = 0
    while len(order) < len(targets):
        for queue in queues:
            if depth < len(queue):
                order.append(queue[depth])
        depth += 1
    return order


def iter_fetch_indexed(
    targets: Iterable[Target],
    fetcher: Fetcher,
    validators: Mapping[str, Validators] = _NO_VALIDATORS,
    *,
    not_before: Mapping[str, datetime] = _NOT_BEFORE,
    now: datetime | None = None,
) -> Generator[tuple[int, FetchedPage], None, None]:
    """(i, page) for each target, `i` its position in `targets`, yielded as each page is done
    (completion order); never raises for a page's problem.

    - A target whose canonical URL came earlier is not fetched again: Reason.DUPLICATE_URL,
      "same canonical URL as target i".
    - A URL in `not_before` whose time is after `now` (default: the fetcher's clock; an earlier
      Retry-After) is not contacted: Reason.DEFERRED.
    - `validators` maps a URL (as given, or canonical) to what its last fetch returned, for a
      conditional GET.
    - Held bodies (`body`) are passed on at once; local files and WARC records are read, and
      URLs fetched, on up to policy.concurrency threads sharing `fetcher`, in an order
      interleaved by host. At most that many pages are done ahead of the reader: a reader
      that stops pulling stops the fetching (so a bounded consumer bounds memory).

    The targets are read up front (to interleave hosts); the pages stream."""
    listed = list(targets)
    policy = fetcher.policy
    when = now or fetcher.clock()
    first_seen: dict[str, int] = {}
    work: list[int] = []
    for i, target in enumerate(listed):
        key = canonicalize(target.url)
        if key in first_seen:
            yield i, FetchedPage(
                url=target.url, final_url=target.url, source=target.source,
                status=Reason.DUPLICATE_URL, fetched_at=fetcher.clock(),
                detail=f"same canonical URL as target {first_seen[key]}",
                title_hint=target.title_hint, published_hint=target.published_hint,
            )
            continue
        first_seen[key] = i
        retry_after = deferred_until(target.url, not_before, when)
        if retry_after is not None:
            yield i, FetchedPage(
                url=target.url, final_url=target.url, source=target.source,
                status=Reason.DEFERRED, fetched_at=when, retry_after=retry_after,
                detail="deferred by an earlier Retry-After", attempt=0,
            )
        elif target.body is not None:
            yield i, page_from_body(target, policy, fetcher.clock)
        else:
            work.append(i)
    if not work:
        return

    def fetch(i: int) -> tuple[int, FetchedPage]:
        target = listed[i]
        if target.local_path is not None:
            return i, page_from_local(target, policy, fetcher.clock)
        v = validators.get(target.url) or validators.get(canonicalize(target.url))
        return i, fetcher.fetch(target, v)

    if len(work) == 1:  # one request (a feed of one, a retried URL): no thread for it
        yield fetch(work[0])
        return
    order = iter(interleave_by_host([listed[i] for i in work]))
    workers = min(policy.concurrency, len(work))
    pool = ThreadPoolExecutor(workers, thread_name_prefix="newsdedup-fetch")
    running: set[Future[tuple[int, FetchedPage]]] = set()
    try:
        while True:
            # Keep every thread busy, and no more pages done than the reader has room for.
            for j in order:
                running.add(pool.submit(fetch, work[j]))
                if len(running) >= workers:
                    break
            if not running:
                return
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _pages_only(
    step: Callable[_P, Generator[tuple[int, FetchedPage], None, None]],
) -> Callable[_P, Generator[FetchedPage, None, None]]:
    """`step` with the same parameters, yielding its pages without their positions."""

    def pages(*args: _P.args, **kwargs: _P.kwargs) -> Generator[FetchedPage, None, None]:
        for _, page in step(*args, **kwargs):
            yield page

    return pages


# The step itself: one FetchedPage per target, yielded as each is done (completion order);
# never raises for a page's problem. The same call as iter_fetch_indexed, whose docstring says
# what it does; that one also says which target each page is for.
iter_fetch = _pages_only(iter_fetch_indexed)
