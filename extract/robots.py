"""robots.txt, fetched once per origin per run and read with protego (RFC 9309 semantics)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego


@dataclass(frozen=True)
class RobotsAnswer:
    """What fetching a robots.txt gave: an HTTP status and body, or (status None) the network
    failure that kept us from any answer, named by a Reason value such as "timeout"."""

    status: int | None
    body: bytes = b""
    failure: str = ""
    detail: str = ""


RobotsFetch = Callable[[str], RobotsAnswer]


@dataclass(frozen=True)
class RobotsVerdict:
    """May the URL be fetched? When robots.txt could not be fetched at all, `failure` names the
    network reason (the page is not fetched either, and is recorded with that reason, which
    says more than "robots")."""

    allowed: bool
    detail: str = ""
    crawl_delay_s: float | None = None
    failure: str = ""


def origin_of(url: str) -> str:
    """scheme://host[:port], the unit robots.txt governs (RFC 9309 2.3)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def product_token(user_agent: str) -> str:
    """'newsdedup/0.1 (+https://...)' -> 'newsdedup': robots groups name products, not UAs."""
    return user_agent.split("/", 1)[0].split()[0] if user_agent.strip() else "*"


class _Rules:
    """One origin's rules. `parser` None means a blanket answer (`allow_all`)."""

    def __init__(
        self, parser: Protego | None, allow_all: bool, detail: str = "", failure: str = ""
    ) -> None:
        self.parser = parser
        self.allow_all = allow_all
        self.detail = detail
        self.failure = failure


class RobotsCache:
    """Answers "may we fetch this URL?" fetching each origin's robots.txt at most once.

    Status handling follows RFC 9309 2.3.1: 2xx is parsed; 4xx (robots.txt "unavailable") allows
    everything; 5xx, 429 and network failures ("unreachable") disallow everything for this run,
    since the site may be refusing crawlers under load. Redirects are followed by `fetch`."""

    def __init__(self, fetch: RobotsFetch, user_agent: str) -> None:
        self._fetch = fetch
        self._agent = product_token(user_agent)
        self._rules: dict[str, _Rules] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def check(self, url: str) -> RobotsVerdict:
        origin = origin_of(url)
        rules = self._rules_for(origin)
        if rules.parser is None:
            if rules.allow_all:
                return RobotsVerdict(True)
            return RobotsVerdict(False, rules.detail, failure=rules.failure)
        delay = rules.parser.crawl_delay(self._agent)
        if rules.parser.can_fetch(url, self._agent):
            return RobotsVerdict(True, crawl_delay_s=float(delay) if delay else None)
        return RobotsVerdict(False, f"disallowed by {origin}/robots.txt for {self._agent}")

    def _rules_for(self, origin: str) -> _Rules:
        with self._guard:
            lock = self._locks.setdefault(origin, threading.Lock())
        with lock:  # one fetch per origin even when many threads ask at once
            if origin not in self._rules:
                self._rules[origin] = self._load(origin)
            return self._rules[origin]

    def _load(self, origin: str) -> _Rules:
        answer = self._fetch(f"{origin}/robots.txt")
        status = answer.status
        if status is None:
            return _Rules(None, False, f"{origin}/robots.txt unreachable: {answer.detail}",
                          answer.failure)
        if status == 429 or status >= 500:
            return _Rules(None, False, f"{origin}/robots.txt answered {status}: RFC 9309 "
                          "treats the site as disallowed until it answers")
        if 200 <= status < 300:
            return _Rules(Protego.parse(answer.body.decode("utf-8", errors="replace")), True)
        return _Rules(None, True)  # 4xx, or redirects past the limit: "unavailable", allow all
