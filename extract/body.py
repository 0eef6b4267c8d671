"""A page's bytes: undo Content-Encoding within a cap, sniff what the bytes are, and decode
HTML to str (byte-order mark, a declaration that decodes cleanly, detection).

Content-Encoding: httpx's own decoder inflates a whole chunk at once, so a gzip bomb would cost
its full size in one call; `BoundedDecoder` inflates at most STEP bytes a call and stops at the
page's cap. It serves HTTP bodies (extract.fetch) and gzipped local files (extract.local) alike:
`gunzip` is the one gunzip of the package.

Charset: trafilatura trusts a declared charset poorly (it guesses before it reads the
declaration), so extract/ decodes every page here and hands trafilatura a str. The order follows
the HTML standard's encoding sniffing (BOM > HTTP header > <meta>), with one change for the real
web: a declaration is believed only when the bytes decode under it without errors, because
servers and templates lie ("charset=iso-8859-1" in front of UTF-8 is the classic case).
"""

from __future__ import annotations

import codecs
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from charset_normalizer import from_bytes

# (BOM, codec), longest first so that UTF-32-LE is not read as UTF-16-LE.
BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# The HTML standard makes a <meta> declaration count only in the first 1024 bytes; real pages put
# long <script> blocks first, so we look a little further (4 KiB is where browsers' pre-scan
# stops in practice too). A declaration found there is still only a candidate.
META_SCAN_BYTES = 4096
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.I)

# WHATWG: these labels mean windows-1252 on the web; Python's latin-1 lacks the 0x80-0x9F glyphs.
_WEB_ALIASES = {"latin-1": "cp1252", "iso8859-1": "cp1252", "ascii": "cp1252"}
# Single-byte codecs decode almost any byte string "cleanly", so "decodes cleanly" proves nothing
# for them; see _prefer_utf8.
_SINGLE_BYTE_PREFIXES = ("cp", "latin", "iso8859", "mac", "koi8", "windows", "tis")

# charset-normalizer reads the whole body in chunks; on a 5 MB page that costs ~1 s. The text that
# decides the charset is spread through a page, so 256 KiB is plenty to detect and bounds the cost.
DETECT_BYTES = 256 * 1024

# A UTF-8 page with a few stray bytes (a pasted cp1252 quote in a comment, a truncated body) is
# still UTF-8: re-detecting it as cp1250 would garble every accented letter. Allow up to 1 bad
# sequence per 100 non-ASCII characters, and at least 2 in any page.
UTF8_BAD_PER_NON_ASCII = 0.01
UTF8_BAD_MIN = 2


@dataclass(frozen=True)
class Decoded:
    """The decoded text, the codec used and why it was chosen (`bom`, `header`, `meta`, `utf-8`,
    `detected`, `fallback`)."""

    text: str
    encoding: str
    how: str


def normalize_label(label: str | None) -> str | None:
    """A codec name Python knows for a declared charset label, or None when it is unknown."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'").lower()).name
    except LookupError:
        return None
    return _WEB_ALIASES.get(name, name)


def header_charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type header value, if any."""
    if not content_type:
        return None
    match = _HEADER_CHARSET.search(content_type)
    return match.group(1) if match else None


def meta_charset(body: bytes) -> str | None:
    """The charset a page declares in <meta charset> or <meta http-equiv=Content-Type>."""
    match = _META_CHARSET.search(body[:META_SCAN_BYTES])
    return match.group(1).decode("ascii", "replace") if match else None


def _is_single_byte(codec: str) -> bool:
    return codec.startswith(_SINGLE_BYTE_PREFIXES) and codec not in ("cp65001",)


def _strict(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _mostly_utf8(body: bytes) -> str | None:
    """UTF-8 with errors replaced, when the errors are a rounding error of the non-ASCII text."""
    text = body.decode("utf-8", "replace")
    bad = text.count("\ufffd") - body.count("\ufffd".encode("utf-8"))
    non_ascii = sum(1 for ch in text if ord(ch) > 127) - bad
    return text if bad <= max(UTF8_BAD_MIN, UTF8_BAD_PER_NON_ASCII * non_ascii) else None


def _prefer_utf8(body: bytes, codec: str) -> bool:
    """True when a single-byte declaration sits in front of bytes that are valid UTF-8 with
    multi-byte sequences: real cp1252/latin-1 text almost never forms valid UTF-8 by chance
    (every accented letter would have to be followed by a continuation byte 0x80-0xBF)."""
    if not _is_single_byte(codec) or body.isascii():
        return False
    return _strict(body, "utf-8") is not None


def decode_html(body: bytes, declared: str | None = None) -> Decoded:
    """Decode an HTML body. `declared` is the transport's charset: a Content-Type header value
    or a bare charset label (FetchedPage.content_type or FetchedPage.encoding)."""
    for bom, codec in BOMS:
        if body.startswith(bom):
            return Decoded(body[len(bom):].decode(codec, "replace"), codec, "bom")

    header_label = header_charset(declared) if declared and "=" in declared else declared
    for how, label in (("header", header_label), ("meta", meta_charset(body))):
        declared_codec = normalize_label(label)
        if declared_codec is None:
            continue
        if how == "meta" and declared_codec.startswith(("utf-16", "utf-32")):
            # A <meta> that could be read as ASCII cannot be UTF-16: the standard says UTF-8.
            declared_codec = "utf-8"
        if _prefer_utf8(body, declared_codec):
            return Decoded(body.decode("utf-8"), "utf-8", "utf-8")
        text = _strict(body, declared_codec)
        if text is None and declared_codec == "utf-8":
            text = _mostly_utf8(body)
        if text is not None:
            return Decoded(text, declared_codec, how)

    text = _strict(body, "utf-8")
    if text is not None:
        return Decoded(text, "utf-8", "utf-8")

    best = from_bytes(body[:DETECT_BYTES]).best()
    if best is not None and best.encoding:
        codec = normalize_label(best.encoding) or best.encoding
        if codec != "utf-8":
            text = _strict(body, codec)
            if text is not None:
                return Decoded(text, codec, "detected")

    text = _mostly_utf8(body)
    if text is not None:
        return Decoded(text, "utf-8", "fallback")
    return Decoded(body.decode("cp1252", "replace"), "cp1252", "fallback")


# --- Content-Encoding ---------------------------------------------------------------------

# Bytes inflated per step: bounds memory per step to 64 KiB however hard a gzip bomb compresses
# (deflate tops out near 1032:1, so a 64 KiB compressed read could otherwise inflate to ~66 MB
# in one call, as httpx's own decoder does).
STEP = 64 * 1024


class BodyTooLarge(Exception):
    """The body, decoded, would pass its cap (FetchPolicy.max_bytes or a document's)."""


class UnsupportedEncoding(Exception):
    """A Content-Encoding other than gzip, deflate (what we send in Accept-Encoding) or identity."""


class BoundedDecoder:
    """Undo Content-Encoding (gzip, deflate; stacked or multi-member) without ever producing
    more than `limit` bytes in total or more than STEP bytes per inflate call."""

    def __init__(self, codings: Sequence[str], limit: int) -> None:
        self._codings = [c for c in codings if c not in ("", "identity")]
        for coding in self._codings:
            if coding not in ("gzip", "x-gzip", "deflate"):
                raise UnsupportedEncoding(coding)
        # Content-Encoding lists codings in the order applied; undo them last-first.
        self._codings.reverse()
        self._stages: list[Any] = [None] * len(self._codings)
        self._limit = limit
        self.out = bytearray()

    def feed(self, data: bytes) -> None:
        self._pump(0, data)

    def _pump(self, i: int, data: bytes) -> None:
        if i == len(self._codings):
            if len(self.out) + len(data) > self._limit:
                raise BodyTooLarge
            self.out += data
            return
        while True:
            d = self._stages[i]
            if d is None:
                if not data:
                    return
                d = self._stages[i] = _decompressor(self._codings[i], data)
            chunk = d.decompress(data, STEP)
            data = d.unconsumed_tail
            if chunk:
                self._pump(i + 1, chunk)
            if d.eof:
                rest = d.unused_data
                self._stages[i] = None
                if rest[:2] != b"\x1f\x8b":  # not another gzip member: trailing junk, ignored
                    return
                data = rest
                continue
            if not data and len(chunk) < STEP:
                return


def _decompressor(coding: str, head: bytes) -> Any:
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header, auto-detected
    # "deflate" should be zlib-wrapped (RFC 9110 8.4.1.2) but some servers send raw deflate.
    zlib_header = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
    return zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)


def gunzip(raw: bytes, max_bytes: int) -> bytes:
    """`raw` inflated when it starts with the gzip magic, as is otherwise; at most `max_bytes`.
    Raises BodyTooLarge, or ValueError for a damaged gzip stream."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    decoder = BoundedDecoder(["gzip"], max_bytes)
    try:
        decoder.feed(raw)
    except zlib.error as exc:
        raise ValueError(f"bad gzip: {exc}") from None
    return bytes(decoder.out)


# --- Content sniffing ----------------------------------------------------------------------

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def is_html(media: str) -> bool:
    return media in HTML_TYPES


# WHATWG MIME sniffing, "rules for identifying an unknown MIME type": the HTML tag patterns.
_HTML_OPENINGS = (
    b"<!doctype html", b"<html", b"<head", b"<script", b"<iframe", b"<h1", b"<div", b"<font",
    b"<table", b"<a", b"<style", b"<title", b"<b", b"<body", b"<br", b"<p",
)
_TAG_ENDS = frozenset({b"", b" ", b">", b"\t", b"\n", b"\r", b"\x0c", b"/"})
_BINARY_MAGIC = {
    b"%PDF-": "PDF", b"PK\x03\x04": "ZIP", b"\x89PNG": "PNG", b"GIF8": "GIF",
    b"\xff\xd8\xff": "JPEG", b"\x1f\x8b": "gzip", b"RIFF": "RIFF", b"\x00\x00\x00": "binary",
}
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff")
# Bytes that never occur in text: C0 controls other than TAB, LF, FF, CR and ESC. Random bytes
# have 27/256 = 10.5% of them; the 441 eval pages have none, so 1% leaves a wide margin.
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))
_NOT_CONTROL = bytes(b for b in range(256) if b not in _CONTROL)  # deleted to count the rest
_CONTROL_SHARE = 0.01
_SNIFF_BYTES = 4096  # chance that 4 KiB of random bytes has no NUL: (255/256)**4096 ~ 1e-7


def looks_like_html(body: bytes) -> bool:
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n\x0c").lower()
    if head.startswith(b"<?xml"):
        return b"<html" in body[:4096].lower()
    if head.startswith(b"<!--"):
        return True
    return any(
        head.startswith(tag) and head[len(tag): len(tag) + 1] in _TAG_ENDS
        for tag in _HTML_OPENINGS
    )


def binary_kind(body: bytes, encoding: str | None = None) -> str | None:
    """What binary content `body` looks like (e.g. 'PDF'), or None when it may be text."""
    head = body[:_SNIFF_BYTES]
    for magic, kind in _BINARY_MAGIC.items():
        if head.startswith(magic):
            return kind
    if head.startswith(_WIDE_BOMS) or (encoding or "").startswith(("utf-16", "utf-32")):
        return None  # UTF-16/32 text is full of NULs
    if b"\x00" in head:
        return "binary (NUL bytes)"
    controls = len(head.translate(None, _NOT_CONTROL))
    if head and controls / len(head) > _CONTROL_SHARE:
        return f"binary ({controls}/{len(head)} control bytes)"
    return None


def media_type(content_type: str | None) -> str | None:
    value = (content_type or "").split(";", 1)[0].strip().lower()
    return value or None


def declared_charset(content_type: str | None) -> str | None:
    """The charset a Content-Type header value declares, lower-cased (FetchedPage.encoding)."""
    label = header_charset(content_type)
    return label.lower() if label else None
