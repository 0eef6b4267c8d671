"""Sitemaps: urlset, sitemap index and Google News sitemaps -> page or child-sitemap entries.

Parsed with lxml's iterparse, element by element, so a 50 MiB sitemap (the protocol's limit)
costs a few MiB of tree, not half a GiB; entities are not resolved and no DTD is loaded, so a
billion-laughs document or an external entity pointing at /etc/passwd does nothing. Element
names are matched by local name: many real sitemaps get their namespace wrong."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree


class BadSitemap(ValueError):
    """Bytes that are neither a sitemap XML document nor a plain-text list of URLs."""


@dataclass(frozen=True)
class SitemapEntry:
    loc: str
    title: str | None = None
    published: datetime | None = None


@dataclass(frozen=True)
class Sitemap:
    is_index: bool
    entries: list[SitemapEntry]


def parse_w3c_datetime(text: str | None) -> datetime | None:
    """W3C datetime (a profile of ISO 8601: '2024-03-04', '2024-03-04T08:00:00Z', ...)."""
    if not text:
        return None
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def parse_sitemap(body: bytes, limit: int) -> Sitemap:
    """At most `limit` entries of a sitemap (XML, or the protocol's plain-text form)."""
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"<"):
        return _parse_text(body, limit)
    entries: list[SitemapEntry] = []
    root_name = ""
    try:
        context = etree.iterparse(
            io.BytesIO(body),
            events=("start", "end"),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
        )
        for event, elem in context:
            name = _local(elem.tag)
            if event == "start":
                if not root_name:
                    root_name = name
                    if root_name not in ("urlset", "sitemapindex"):
                        raise BadSitemap(f"root element <{root_name}> is not urlset/sitemapindex")
                continue
            if name not in ("url", "sitemap"):
                continue
            loc = title = published = None
            for child in elem.iter():
                child_name = _local(child.tag)
                if child_name == "loc" and loc is None:
                    loc = (child.text or "").strip()
                elif child_name == "title" and title is None:
                    title = (child.text or "").strip() or None
                elif child_name == "publication_date" and published is None:
                    published = parse_w3c_datetime(child.text)
            if loc:
                entries.append(SitemapEntry(loc, title, published))
            elem.clear()
            if len(entries) >= limit:
                break
    except etree.XMLSyntaxError as exc:
        if not entries:
            raise BadSitemap(f"not well-formed XML: {exc}") from None
        # A truncated tail after good entries: keep what parsed (lenient, like search engines).
    return Sitemap(root_name == "sitemapindex", entries)


def _parse_text(body: bytes, limit: int) -> Sitemap:
    entries = []
    for line in body.decode("utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        if not line.startswith(("http://", "https://")):
            raise BadSitemap(f"plain-text sitemap line is not a URL: {line[:80]!r}")
        entries.append(SitemapEntry(line))
        if len(entries) >= limit:
            break
    if not entries:
        raise BadSitemap("empty sitemap")
    return Sitemap(False, entries)
