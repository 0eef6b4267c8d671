"""The records that cross extract/'s boundary: Source -> Target -> FetchedPage -> Article."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

# What tells the time (injected by tests): FetchedPage.fetched_at and Retry-After arithmetic.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class SourceKind(StrEnum):
    FEED = "feed"
    SITEMAP = "sitemap"
    URLS = "urls"
    DIRECTORY = "directory"
    WARC = "warc"


class Reason(StrEnum):
    """Why a URL did not become an article. Stored verbatim in the warehouse's `fetches.status`."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"  # conditional GET said 304: nothing new, not a failure
    DEFERRED = "deferred"  # 429/503 with Retry-After: tried again in a later run
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    NOT_HTML = "not_html"
    ROBOTS = "robots"
    BLOCKED_ADDRESS = "blocked_address"
    BAD_SCHEME = "bad_scheme"
    BAD_URL = "bad_url"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    HTTP_ERROR = "http_error"
    CONNECT_ERROR = "connect_error"
    EMPTY = "empty"
    DECODE_ERROR = "decode_error"
    BAD_FEED = "bad_feed"
    EXTRACTION_FAILED = "extraction_failed"
    EXTRACTION_TIMEOUT = "extraction_timeout"
    TOO_SHORT = "too_short"
    DUPLICATE_URL = "duplicate_url"


class DateSource(StrEnum):
    """Where an article's `published_at` came from. Stored verbatim in `articles.date_source`.
    All but TEXT are stated by the publisher; TEXT is htmldate's guess from the body text
    ("2003-01-01" for a page that mentions 2003), weak evidence that never splits an event alone."""

    META = "meta"  # a <meta> tag: article:published_time, dc.date, ...
    JSONLD = "jsonld"  # JSON-LD datePublished (or dateCreated)
    TIME = "time"  # an HTML <time datetime="..."> element
    URL = "url"  # a date in the URL path: /2025/01/07/
    TEXT = "text"  # guessed from the body text
    FEED = "feed"  # the feed entry's date, for a page that states none of its own


@dataclass(frozen=True)
class Source:
    """One configured source: a feed, a sitemap, a list of URLs, a local directory or a WARC
    file."""

    name: str
    kind: SourceKind
    locations: tuple[str, ...]


@dataclass(frozen=True)
class Target:
    """A page to fetch, found by discovery. No HTTP request is made when `body` holds the
    content, or when `local_path` says where on this machine it is (a file, or with
    `warc_offset` one WARC record): directory and WARC discovery set `local_path`, so that a
    million-page archive is listed without being held, and iter_fetch reads each page when due."""

    url: str
    source: str
    title_hint: str | None = None
    published_hint: datetime | None = None
    body: bytes | None = None
    content_type: str | None = None  # with `body`/`local_path`: the Content-Type it came with
    local_path: str | None = None
    warc_offset: int | None = None


@dataclass(frozen=True)
class Validators:
    """What a previous fetch of a URL returned, for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchedPage:
    """The outcome of fetching one URL. `status` is Reason.OK, Reason.NOT_MODIFIED or a failure."""

    url: str
    final_url: str
    source: str
    status: Reason
    fetched_at: datetime
    http_status: int | None = None
    body: bytes = b""
    content_type: str | None = None
    encoding: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    n_bytes: int = 0
    elapsed_s: float = 0.0
    attempt: int = 1
    retry_after: datetime | None = None
    detail: str = ""
    title_hint: str | None = None
    published_hint: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.status is Reason.OK


@dataclass(frozen=True)
class Article:
    """A cleaned page. `status` is Reason.OK or why extraction failed (then `text` is empty
    or too short, and the article is stored but never grouped). `date_source` says where
    `published_at` came from; None exactly when `published_at` is None."""

    article_id: str
    url: str
    canonical_url: str
    source: str
    status: Reason
    text: str
    content_hash: str
    title: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    sitename: str | None = None
    language: str | None = None
    detail: str = ""
    date_source: DateSource | None = None

    @property
    def ok(self) -> bool:
        return self.status is Reason.OK
