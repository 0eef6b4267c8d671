"""Discovery: a configured Source -> the Targets to fetch, plus a record for every failure.

    with Fetcher(policy) as fetcher:
        targets, failures = discover(source, fetcher)

Feeds and sitemaps are fetched by the run's Fetcher (extract.fetch), the one its pages go
through: the same address guard, caps, total deadline, robots.txt cache and per-host and
overall limits, so the limits said to hold for a run hold for discovery too. URL lists,
directories and WARC files are read locally (extract.local).
Targets are deduplicated by canonical URL within the source; `dedupe_targets` does the same
across sources. A failure is a FetchedPage whose `url` is the location that failed (the feed,
the sitemap, the file, the bad line), so it lands in the warehouse's `fetches` like any page.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from extract import guard
from extract.body import BodyTooLarge, gunzip
from extract.feeds import BadFeed, parse_feed
from extract.fetch import Fetcher
from extract.local import WarcProblem, file_kind, open_regular, read_warc
from extract.records import FetchedPage, Reason, Source, SourceKind, Target
from extract.sitemaps import BadSitemap, parse_sitemap
from extract.urls import canonicalize

HTML_SUFFIXES = (".html", ".htm", ".xhtml", ".html.gz", ".htm.gz", ".xhtml.gz")


def _any_type(media: str) -> bool:
    """Discovery documents are judged by parsing, not by their (often wrong) Content-Type:
    feeds come as text/html, sitemaps as application/octet-stream or x-gzip."""
    return True


class _Discovery:
    def __init__(self, source: Source, fetcher: Fetcher) -> None:
        self.source = source
        self.fetcher = fetcher
        self.policy = fetcher.policy
        self.clock = fetcher.clock
        self.targets: list[Target] = []
        self.failures: list[FetchedPage] = []
        self._seen: set[str] = set()
        self.truncated = False

    # Plumbing -----------------------------------------------------------------------------

    def fail(self, url: str, reason: Reason, detail: str, **fields: object) -> None:
        self.failures.append(
            FetchedPage(url=url, final_url=url, source=self.source.name, status=reason,
                        fetched_at=self.clock(), detail=detail, **fields)  # type: ignore[arg-type]
        )

    def add(self, target: Target) -> bool:
        """Keep `target` unless its canonical URL was seen; False once the source is full."""
        if len(self.targets) >= self.policy.max_targets_per_source:
            if not self.truncated:
                self.truncated = True
                self.fail(target.url, Reason.TOO_LARGE,
                          f"source lists more than max_targets_per_source="
                          f"{self.policy.max_targets_per_source} URLs; the rest were skipped")
            return False
        key = canonicalize(target.url)
        if key not in self._seen:
            self._seen.add(key)
            self.targets.append(target)
        return True

    def document(self, location: str, max_bytes: int) -> tuple[bytes, str | None, str] | None:
        """A feed/sitemap/list document's (bytes, content type, base URL), from the web or a
        local file; None after recording why it could not be had."""
        path = _local_path(location)
        if path is None:
            page = self.fetcher.fetch_document(location, self.source.name, _any_type, max_bytes)
            if not page.ok:
                self.failures.append(page)
                return None
            return page.body, page.content_type, page.final_url
        body = self.read_file(path, max_bytes)
        return None if body is None else (body, None, path.resolve().as_uri())

    def read_file(self, path: Path, max_bytes: int) -> bytes | None:
        uri = path.resolve().as_uri() if path.exists() else str(path)
        try:
            size = path.stat().st_size
            if size > max_bytes:
                self.fail(uri, Reason.TOO_LARGE, f"{size} bytes > limit {max_bytes}", n_bytes=size)
                return None
            with open_regular(path) as f:
                raw = f.read(max_bytes + 1)
        except OSError as exc:
            self.fail(uri, Reason.CONNECT_ERROR, f"cannot read {path}: {exc.strerror or exc}")
            return None
        return self.gunzip(uri, raw, max_bytes)  # as it is unless it starts with gzip's magic

    def gunzip(self, url: str, raw: bytes, max_bytes: int) -> bytes | None:
        try:
            return gunzip(raw, max_bytes)
        except BodyTooLarge:
            self.fail(url, Reason.TOO_LARGE, f"over {max_bytes} bytes once gunzipped")
        except ValueError as exc:
            self.fail(url, Reason.DECODE_ERROR, str(exc))
        return None

    # Kinds ------------------------------------------------------------------------------

    def feed(self, location: str) -> None:
        doc = self.document(location, self.policy.max_document_bytes)
        if doc is None:
            return
        body, content_type, base = doc
        try:
            # One entry past the room left, so that a longer feed is still seen to be longer.
            room = self.policy.max_targets_per_source - len(self.targets) + 1
            targets, linkless = parse_feed(body, base, self.source.name, content_type,
                                           max_entries=max(room, 1))
        except BadFeed as exc:
            self.fail(location, Reason.BAD_FEED, str(exc), n_bytes=len(body))
            return
        if linkless:
            self.fail(location, Reason.BAD_FEED,
                      f"{linkless} of {linkless + len(targets)} entries have no link; skipped")
        for target in targets:
            if not self.add(target):
                break

    def sitemap(self, location: str) -> None:
        # Breadth first, so a deep chain of indexes cannot starve the sitemaps listed at the top.
        queue: list[tuple[str, int]] = [(location, 0)]
        visited = {canonicalize(location)}
        fetched = 0
        while queue:
            url, depth = queue.pop(0)
            if fetched >= self.policy.max_sitemaps:
                self.fail(url, Reason.TOO_LARGE,
                          f"more than max_sitemaps={self.policy.max_sitemaps} sitemap documents; "
                          f"{len(queue) + 1} skipped")
                return
            fetched += 1
            doc = self.document(url, self.policy.max_document_bytes)
            if doc is None:
                continue
            body, _, base = doc
            body_or_none = self.gunzip(url, body, self.policy.max_document_bytes)
            if body_or_none is None:
                continue
            room = self.policy.max_targets_per_source - len(self.targets) + 1
            try:
                parsed = parse_sitemap(body_or_none, max(room, 1))
            except BadSitemap as exc:
                self.fail(url, Reason.BAD_FEED, str(exc), n_bytes=len(body_or_none))
                continue
            if parsed.is_index:
                if depth + 1 > self.policy.max_sitemap_depth:
                    self.fail(url, Reason.TOO_LARGE,
                              f"sitemap index nested deeper than max_sitemap_depth="
                              f"{self.policy.max_sitemap_depth}; {len(parsed.entries)} skipped")
                    continue
                for entry in parsed.entries:
                    child = _join(base, entry.loc)
                    if canonicalize(child) not in visited:
                        visited.add(canonicalize(child))
                        queue.append((child, depth + 1))
                continue
            for entry in parsed.entries:
                target = Target(url=_join(base, entry.loc), source=self.source.name,
                                title_hint=entry.title, published_hint=entry.published)
                if not self.add(target):
                    return

    def urls(self, location: str) -> None:
        if location.lower().startswith(("http://", "https://")):
            self.url_line(location, location)
            return
        path = _local_path(location)
        scheme = urlsplit(location).scheme.lower()
        # ftp:, gopher:, ... are refused; a one-letter "scheme" is a Windows drive (C:\urls.txt)
        if path is None or (scheme and scheme != "file" and len(scheme) > 1):
            self.fail(location, Reason.BAD_SCHEME,
                      "not an http(s) URL, and not a path to a file of URLs")
            return
        if not path.is_file():
            self.fail(location, Reason.BAD_URL, f"not an http(s) URL, and no file at {path}")
            return
        body = self.read_file(path, self.policy.max_document_bytes)
        if body is None:
            return
        for number, line in enumerate(body.decode("utf-8", errors="replace").splitlines(), 1):
            line = line.strip()
            if line and not line.startswith("#"):
                if not self.url_line(line, f"{path}:{number}"):
                    return

    def url_line(self, url: str, where: str) -> bool:
        try:
            guard.split_url(url)
        except guard.BadScheme as exc:
            self.fail(url, Reason.BAD_SCHEME, f"{where}: {exc}")
            return True
        except guard.GuardError as exc:
            self.fail(url, Reason.BAD_URL, f"{where}: {exc}")
            return True
        return self.add(Target(url=url, source=self.source.name))

    def directory(self, location: str) -> None:
        root = _local_path(location)
        if root is None or not root.is_dir():
            self.fail(location, Reason.BAD_URL, f"no directory at {location}")
            return
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()  # deterministic order; symlinked directories are not followed
            for name in sorted(filenames):
                if not name.lower().endswith(HTML_SUFFIXES):
                    continue
                # One bad entry costs that entry: a symlink loop once ended the whole walk
                # (resolve() raised), and a FIFO, listed, hung the run when read.
                listed = Path(dirpath, name)
                try:
                    info = listed.stat()
                    path = listed.resolve()
                except (OSError, RuntimeError) as exc:  # RuntimeError: a loop, Python < 3.13
                    why = getattr(exc, "strerror", None) or str(exc)
                    self.fail(listed.absolute().as_uri(), Reason.BAD_URL,
                              f"cannot read {listed}: {why}; fix or remove it")
                    continue
                if not stat.S_ISREG(info.st_mode):
                    self.fail(path.as_uri(), Reason.BAD_URL,
                              f"{listed} is {file_kind(info.st_mode)}, not a regular file;"
                              " only files are read: move it out of the directory")
                    continue
                size = info.st_size
                if size > self.policy.max_bytes:  # (a .gz is checked again once inflated)
                    self.fail(path.as_uri(), Reason.TOO_LARGE,
                              f"{size} bytes > max_bytes {self.policy.max_bytes}", n_bytes=size)
                    continue
                # Listed, not read: iter_fetch reads each file when it gets to it.
                target = Target(url=path.as_uri(), source=self.source.name,
                                content_type="text/html", local_path=str(path))
                if not self.add(target):
                    return

    def warc(self, location: str) -> None:
        path = _local_path(location)
        if path is None or not path.is_file():
            self.fail(location, Reason.BAD_URL,
                      f"no WARC file at {location} (WARC files are read locally; download first)")
            return
        for item in read_warc(path, self.source.name):
            if isinstance(item, WarcProblem):
                self.fail(item.url, item.reason, item.detail, http_status=item.http_status,
                          content_type=item.content_type)
            elif not self.add(item):
                return


def _join(base: str, loc: str) -> str:
    return urljoin(base, loc.strip())


def _local_path(location: str) -> Path | None:
    """A local path for a bare path or a file: URI; None for an http(s) URL."""
    text = location.strip()
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")):
        return None
    if lowered.startswith("file:"):
        return Path(unquote(urlsplit(text).path))
    return Path(text).expanduser()


def discover(source: Source, fetcher: Fetcher) -> tuple[list[Target], list[FetchedPage]]:
    """The targets one source lists, and a FetchedPage for every location or entry that could
    not be used. Never raises for a source's own problems. Feeds and sitemaps are fetched with
    `fetcher` (the run's: its limits count them); the caller closes it."""
    run = _Discovery(source, fetcher)
    handler = {
        SourceKind.FEED: run.feed,
        SourceKind.SITEMAP: run.sitemap,
        SourceKind.URLS: run.urls,
        SourceKind.DIRECTORY: run.directory,
        SourceKind.WARC: run.warc,
    }[source.kind]
    for location in source.locations:
        if run.truncated:
            break
        try:
            handler(location)
        except Exception as exc:  # noqa: BLE001 - a bug costs the location, not the run
            run.fail(location, Reason.BAD_FEED, f"unexpected {exc!r}")
    return run.targets, run.failures


def dedupe_targets(targets: Iterable[Target]) -> list[Target]:
    """The first target of each canonical URL, in order (across sources of one run)."""
    seen: set[str] = set()
    kept = []
    for target in targets:
        key = canonicalize(target.url)
        if key not in seen:
            seen.add(key)
            kept.append(target)
    return kept
