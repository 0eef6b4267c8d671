"""Pages held on this machine: files (gzipped or not), WARC records, bodies already in hand.

Discovery lists local pages without reading them (extract.sources: a directory walk, a WARC
file's records by offset), so a million-page archive is listed without being held; the fetch
step reads each page when it gets to it (`page_from_local`). Never over HTTP.

WARC: warcio rather than fastwarc: it is already a dependency, pure Python, and decodes chunked
transfer and gzip/deflate content encodings of the stored HTTP payload for us. A CC-NEWS file
holds ~1 GiB of pages, so bodies are read one record at a time, by offset (`read_record`).
"""

from __future__ import annotations

import errno
import os
import stat
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from extract.body import BodyTooLarge, declared_charset, gunzip, is_html, media_type
from extract.policy import FetchPolicy
from extract.records import Clock, FetchedPage, Reason, Target, utc_now

# --- Only regular files --------------------------------------------------------------------
# A FIFO named `x.html` in a `directory` source hung a run for ever: opening a FIFO for reading
# waits for a writer, inside a thread no time limit reaches and no signal stops (issue #21). A
# device or socket named like a page would do the same or worse. So a file is opened without
# blocking, checked, and refused unless it is a regular file.


class NotRegularFile(OSError):
    """A path that names a FIFO, a device, a socket or a directory, not a file of bytes."""


def file_kind(mode: int) -> str:
    """What st_mode describes, in words for a failure's detail."""
    for test, name in (
        (stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """`path` opened for reading in binary, or NotRegularFile (an OSError) when it is anything
    but a regular file. Symlinks are followed; a symlink loop is an OSError (ELOOP)."""
    # O_NONBLOCK: open() of a FIFO returns at once instead of waiting for a writer; the
    # descriptor is put back to blocking once it is known to be a regular file.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(
                errno.EINVAL, f"{file_kind(mode)}, not a regular file: only files are read",
                os.fspath(path),
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


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
        return read_record(target.local_path, target.warc_offset, max_bytes)
    return read_file(Path(target.local_path), max_bytes)


def read_file(path: Path, max_bytes: int) -> bytes:
    """A file's bytes, gunzipped when they are gzip, at most `max_bytes` either way (a 1 MB
    .html.gz can inflate to 1 GiB). Only a regular file is read (open_regular). Raises
    BodyTooLarge, ValueError (a damaged gzip stream) or OSError."""
    with open_regular(path) as f:
        raw = f.read(max_bytes + 1)
    if len(raw) > max_bytes:  # compressed or not, the content is bigger than that
        raise BodyTooLarge
    return gunzip(raw, max_bytes)


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


# --- WARC ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WarcProblem:
    url: str
    reason: Reason
    detail: str
    http_status: int | None = None
    content_type: str | None = None


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
                media = media_type(content_type)
                if media is None or not is_html(media):
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
            # What read_warc lists is an HTTP response; bytes that are not the start of one
            # can still parse, leniently, as an old-style ARC record with no HTTP headers
            # (how they parse depends on the gzip header's timestamp at that offset).
            if record.rec_type != "response" or record.http_headers is None:
                raise ValueError(f"a {record.format} {record.rec_type} record, not a response")
            body = record.content_stream().read(max_bytes + 1)
        except (StopIteration, ArchiveLoadFailed, zlib.error, OSError, AttributeError,
                ValueError) as exc:
            raise ValueError(f"no readable WARC record at {path}#{offset}: {exc}") from None
    if len(body) > max_bytes:
        raise BodyTooLarge
    return body
