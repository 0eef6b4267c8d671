"""WARC files (Common Crawl's CC-NEWS, or any crawler's archive) -> Targets pointing at records.

warcio rather than fastwarc: it is already a dependency, pure Python, and decodes chunked
transfer and gzip/deflate content encodings of the stored HTTP payload for us. Discovery only
lists the records (URL, content type, offset): a CC-NEWS file holds ~1 GiB of pages, so bodies
are read one record at a time, by offset, when fetch_all reaches them (`read_record`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from extract.records import Reason, Target

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


@dataclass(frozen=True)
class WarcProblem:
    url: str
    reason: Reason
    detail: str
    http_status: int | None = None
    content_type: str | None = None


class RecordTooLarge(Exception):
    pass


def _media(content_type: str | None) -> str | None:
    return (content_type or "").split(";", 1)[0].strip().lower() or None


def read_warc(path: Path, source: str) -> Iterator[Target | WarcProblem]:
    """Each HTML response record as a Target (local_path + warc_offset, no body). Request,
    metadata and warcinfo records, and responses that are not 200, are skipped: they are not
    pages. A 200 response that is not HTML comes back as a WarcProblem."""
    resolved = str(path.resolve())
    with path.open("rb") as stream:
        records = ArchiveIterator(stream)
        try:
            for record in records:
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
                media = _media(content_type)
                if media not in HTML_TYPES:
                    yield WarcProblem(url, Reason.NOT_HTML, f"Content-Type {media}", status,
                                      content_type)
                    continue
                yield Target(url=url, source=source, content_type=content_type,
                             local_path=resolved, warc_offset=records.get_record_offset())
        except (ArchiveLoadFailed, Exception) as exc:  # noqa: BLE001 - warcio raises anything
            # on a damaged file (AttributeError on a header-less record); keep what was read.
            yield WarcProblem(path.resolve().as_uri(), Reason.DECODE_ERROR,
                              f"not a readable WARC ({type(exc).__name__}): {str(exc)[:200]}")


def read_record(path: str, offset: int, max_bytes: int) -> bytes:
    """The decoded HTTP payload of the record at `offset` (a gzip member's start in a
    .warc.gz). Raises RecordTooLarge past `max_bytes`, ValueError when it is unreadable."""
    with open(path, "rb") as stream:
        stream.seek(offset)
        try:
            record = next(iter(ArchiveIterator(stream)))
            body = record.content_stream().read(max_bytes + 1)
        except (StopIteration, ArchiveLoadFailed, zlib.error, OSError, AttributeError) as exc:
            raise ValueError(f"no readable WARC record at {path}#{offset}: {exc}") from None
    if len(body) > max_bytes:
        raise RecordTooLarge
    return body
