"""URL identity: canonical forms, so that one page fetched under two addresses is one article."""

from __future__ import annotations

import functools
import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only track the click, never select content.
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "ref", "ref_src",
     "cmpid", "ncid", "ito", "_ga", "_gl", "yclid", "spm"}
)
DEFAULT_PORTS = {"http": 80, "https": 443}

_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
# RFC 3986 2.3 unreserved characters: percent-encoding them changes nothing, so decode them.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _normalize_percent(path: str) -> str:
    """'%7e' -> '~', '%2f' -> '%2F': decode unreserved characters, upper-case the rest."""

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else f"%{match.group(1).upper()}"

    return _PERCENT.sub(fix, path)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4: '/a/./b/../c' -> '/a/c'."""
    if "." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                out.append("")
        elif segment == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def _host(hostname: str) -> str:
    host = hostname.lower().rstrip(".")
    if ":" in host:  # IPv6 literal: brackets go back on in the netloc
        return f"[{host}]"
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")  # 'bücher.de' -> 'xn--bcher-kva.de'
    except UnicodeError:
        return host


@functools.lru_cache(maxsize=32_768)
def canonicalize(url: str) -> str:
    """Lower-case scheme and host (IDNA-encoded, no trailing dot), drop credentials, default
    ports, fragments, dot segments and tracking parameters (utm_* and TRACKING_PARAMS),
    normalise percent-escapes, sort the remaining parameters, and drop a bare trailing '?'.

    Never raises: a URL too broken to parse comes back stripped, so it still has an identity.
    Cached: a run asks for the same URL's canonical form three or four times (discovery,
    iter_fetch, the pool)."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return text
    scheme = parts.scheme.lower()
    host = _host(parts.hostname or "")
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS
    )
    path = _remove_dot_segments(_normalize_percent(parts.path)) if parts.path else "/"
    if scheme not in DEFAULT_PORTS and not netloc:
        path = parts.path or path  # file:, urn: ...: keep the path as written
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


# The scheme and authority of a URL: everything site_of looks at.
_ORIGIN = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


def site_of(url: str) -> str:
    """The host without a leading 'www.', the unit that rel=canonical must stay within.

    Memoized on the URL's origin: a batch has many URLs per site, and parsing every URL was 40%
    of a 100,000-article load (bench/bench_load.py, cProfile)."""
    match = _ORIGIN.match(url)
    return _site_of_origin(match.group(0)) if match else _site_of(url)


@functools.lru_cache(maxsize=65536)
def _site_of_origin(origin: str) -> str:
    return _site_of(origin)


def _site_of(url: str) -> str:
    try:
        hostname = urlsplit(url.strip()).hostname or ""
    except ValueError:
        return ""
    host = _host(hostname).strip("[]")
    return host[4:] if host.startswith("www.") else host


def same_site(a: str, b: str) -> bool:
    return bool(site_of(a)) and site_of(a) == site_of(b)


def url_id(url: str) -> str:
    """A stable id for a canonical URL: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(canonicalize(url).encode("utf-8")).hexdigest()[:16]
