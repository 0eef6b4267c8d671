"""WARC files (Common Crawl's CC-NEWS, or any crawler's archive) -> Targets carrying their bytes.

warcio rather than fastwarc: it is already a dependency, pure Python, and decodes chunked
transfer and gzip/deflate content encodings of the stored HTTP payload for us; the archive is
streamed record by record, so a multi-GiB .warc.gz never sits in memory."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from extract.fetch import HTML_TYPES, media_type
from extract.records import Reason, Target


@dataclass(frozen=True)
class WarcProblem:
    url: str
    reason: Reason
    detail: str
    http_status: int | None = None
    content_type: str | None = None


def read_warc(
    path: Path, source: str, max_bytes: int
) -> Iterator[Target | WarcProblem]:
    """Each HTML response record as a Target (body = decoded HTTP payload). Request, metadata
    and warcinfo records, and responses that are not 200, are skipped: they are not pages.
    A 200 response that is not HTML, or is over `max_bytes`, comes back as a WarcProblem."""
    with path.open("rb") as stream:
        try:
            for record in ArchiveIterator(stream):
                if record.rec_type != "response" or record.http_headers is None:
                    continue
                url = (record.rec_headers.get_header("WARC-Target-URI") or "").strip()
                if not url.startswith(("http://", "https://")):
                    continue  # dns:, whois: ... records
                status_text = record.http_headers.get_statuscode() or "0"
                status = int(status_text) if status_text.isdigit() else 0
                if status != 200:
                    continue
                content_type = record.http_headers.get_header("Content-Type")
                media = media_type(content_type)
                if media not in HTML_TYPES:
                    yield WarcProblem(url, Reason.NOT_HTML, f"Content-Type {media}", status,
                                      content_type)
                    continue
                try:
                    body = record.content_stream().read(max_bytes + 1)
                except (zlib.error, OSError, ValueError) as exc:
                    yield WarcProblem(url, Reason.DECODE_ERROR, f"bad payload: {exc}", status,
                                      content_type)
                    continue
                if len(body) > max_bytes:
                    yield WarcProblem(url, Reason.TOO_LARGE, f"payload over max_bytes {max_bytes}",
                                      status, content_type)
                    continue
                yield Target(url=url, source=source, body=body, content_type=content_type)
        except (ArchiveLoadFailed, Exception) as exc:  # noqa: BLE001 - warcio raises anything
            # on a damaged file (AttributeError on a header-less record); keep what was read.
            yield WarcProblem(path.resolve().as_uri(), Reason.DECODE_ERROR,
                              f"not a readable WARC ({type(exc).__name__}): {str(exc)[:200]}")
