"""How politely and how defensively to fetch: the policy's limits, the per-host limiter, and
what a server's Retry-After means for the next run.

Politeness is per host (origin): at most per_host_concurrency requests in flight, per_host_delay_s
between their starts (longer when robots.txt asks for a Crawl-delay, up to max_crawl_delay_s),
and at most `concurrency` in flight over every host of a run, since one Fetcher serves the run.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DEFAULT_USER_AGENT = (
    "newsdedup/0.1 (+https://github.com/newsdedup/newsdedup; news deduplication for research; "
    "honours robots.txt)"
)

# Retry-After beyond this is clamped: a server saying "come back in 10**12 seconds" must not
# overflow datetime, and after a month a fresh try costs one request.
MAX_RETRY_AFTER = timedelta(days=30)


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
            if not value >= 0:  # NaN too: it compares false with every deadline
                raise ValueError(f"FetchPolicy.{name} must be >= 0, got {value!r}")
        for name, value in {**positive, **non_negative}.items():
            if value == float("inf"):
                raise ValueError(f"FetchPolicy.{name} must be a finite number, got {value!r}")
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
        if any(ord(c) < 32 or ord(c) == 127 for c in self.user_agent):
            # A CR or LF would split the header: httpx refuses it, and every fetch then failed.
            raise ValueError(
                f"FetchPolicy.user_agent must be one line of text, got {self.user_agent!r};"
                f" remove the line break or control character, e.g. {DEFAULT_USER_AGENT!r}"
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


# --- Retry-After ---------------------------------------------------------------------------


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


def deferred_until(
    url: str, not_before: Mapping[str, datetime], now: datetime
) -> datetime | None:
    """When an earlier Retry-After still holds for `url` (not to be contacted before then)."""
    when = not_before.get(url)
    if when is None:
        return None
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return when if when > now else None
