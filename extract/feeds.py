"""RSS and Atom: feed bytes -> Targets, with the entry's title and date as hints.

feedparser is only ever given bytes that our guarded fetcher has already fetched (or a local
file's bytes): handed a URL, it would fetch it itself, past the address guard and the caps."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from extract.records import Target


class BadFeed(ValueError):
    """Bytes that hold no feed entries."""


def entry_datetime(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    try:
        year, month, day, hour, minute, second = parsed[:6]
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _web_link(value: object) -> str | None:
    """An http(s) or relative link; None for 'urn:...', 'tag:...', 'mailto:' and the like
    (feedparser fills `link` from an Atom entry's id when the entry has no link)."""
    text = str(value or "").strip()
    scheme = urlsplit(text).scheme.lower()
    return text if text and scheme in ("", "http", "https") else None


def _entry_link(entry: Any) -> str | None:
    link = _web_link(entry.get("link"))
    if link:
        return link
    for candidate in entry.get("links", []):
        if candidate.get("rel", "alternate") == "alternate":
            link = _web_link(candidate.get("href"))
            if link:
                return link
    guid = str(entry.get("id") or "")
    return guid if guid.startswith(("http://", "https://")) else None


# The start of an RSS <item> or Atom <entry> (namespace prefix allowed). Not <items>, RSS
# 1.0's table of contents. A tag written inside CDATA text would be counted too: the cut then
# comes early and the feed gives fewer entries, never more work.
_ENTRY_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s>/]")


def cut_entries(body: bytes, max_entries: int) -> bytes:
    """The feed's bytes up to the start of entry `max_entries + 1`, or all of them when it
    has fewer. feedparser reads the whole document before it gives the first entry, so a
    100,000-item feed cost 41 s of parsing to keep ten; cut, it costs what ten do. What is cut
    is never closed: feedparser's lenient parser keeps the entries it has."""
    for n, match in enumerate(_ENTRY_START.finditer(body)):
        if n == max_entries:
            return body[: match.start()]
    return body


def parse_feed(
    body: bytes,
    feed_url: str,
    source: str,
    content_type: str | None = None,
    max_entries: int | None = None,
) -> tuple[list[Target], int]:
    """The feed's entries as Targets (at most `max_entries`, with the rest never parsed), and
    how many entries had no usable link.

    Raises BadFeed when the bytes are not a feed at all (no entries and a parse error)."""
    if max_entries is not None:
        body = cut_entries(body, max_entries)
    headers = {"content-location": feed_url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(body, response_headers=headers)
    if not parsed.entries:
        if parsed.bozo:
            raise BadFeed(f"not a feed: {parsed.get('bozo_exception')!r}")
        if not parsed.get("version"):
            raise BadFeed("not an RSS or Atom document")
    targets: list[Target] = []
    linkless = 0
    for entry in parsed.entries:
        link = _entry_link(entry)
        if not link:
            linkless += 1
            continue
        title = entry.get("title")
        targets.append(
            Target(
                url=urljoin(feed_url, link.strip()),
                source=source,
                title_hint=str(title).strip() or None if title else None,
                published_hint=entry_datetime(entry),
            )
        )
    return targets, linkless
