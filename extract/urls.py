"""URL identity: canonical forms, so that one page fetched under two addresses is one article."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only track the click, never select content.
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "ref", "ref_src",
     "cmpid", "ncid", "ito", "_ga", "_gl", "yclid", "spm"}
)
DEFAULT_PORTS = {"http": 80, "https": 443}


def canonicalize(url: str) -> str:
    """Lower-case scheme and host, drop default ports, fragments, tracking parameters
    (utm_* and TRACKING_PARAMS), sort the remaining parameters, and drop a bare trailing '?'."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS
    )
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


def site_of(url: str) -> str:
    """The host without a leading 'www.', the unit that rel=canonical must stay within."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def same_site(a: str, b: str) -> bool:
    return bool(site_of(a)) and site_of(a) == site_of(b)


def url_id(url: str) -> str:
    """A stable id for a canonical URL: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(canonicalize(url).encode("utf-8")).hexdigest()[:16]
