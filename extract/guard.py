"""Address guard: refuse URLs whose host resolves to an address the public web cannot own.

A feed or a redirect chosen by someone else must not make us request `http://127.0.0.1:6379/`,
a cloud metadata endpoint (169.254.169.254) or a router on 192.168.0.1. The checks run after DNS
resolution (a hostname such as `localhost.example.` can point anywhere), on every redirect hop,
and again inside the connection itself (`extract.http.GuardedBackend`, with `resolve` and
`check_addresses` from here), which connects to the very address it has just checked. That last
step closes the DNS-rebinding window: a name that resolves to a public address for the check and
to 127.0.0.1 for the connection never gets a socket, because there is only one resolution per
connection and the socket is opened on its vetted answer.

Residual risks, stated so nobody assumes more:
- A pooled keep-alive connection is reused without resolving again; it is still bound to the
  address that was vetted when it was opened, so this is not a bypass.
- An injected transport (tests, or a caller's proxy) does not go through `GuardedBackend`; then
  only the pre-request `check_url` protects, and a resolver that answers differently the second
  time could slip through. The default transport (`extract.http.GuardedTransport`) is always
  guarded.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

ALLOWED_SCHEMES = frozenset({"http", "https"})

# getaddrinfo's shape: (host, port, family, type, proto, flags) -> [(family, type, proto, canon,
# sockaddr)]. Tests inject a fake with the same signature.
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: v4 in the last 32 bits
_NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: never on the public web
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d form (RFC 4291 2.5.5.1)


class GuardError(Exception):
    """A URL the fetcher refuses. Subclasses name the reason."""


class BadURL(GuardError):
    """The URL cannot be parsed or has no host."""


class BadScheme(GuardError):
    """A scheme other than http or https (file:, ftp:, gopher:, data: ...)."""


class BlockedAddress(GuardError):
    """The host is, or resolves to, a loopback, private, link-local, multicast, reserved or
    unspecified address, or an IPv6 form embedding one."""


class ResolutionError(GuardError):
    """DNS gave no answer (unknown name, or no answer within the deadline)."""


def blocked_reason(ip: IPAddress) -> str | None:
    """Why `ip` may not be contacted, or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner = blocked_reason(embedded)
            return f"{ip} embeds {inner}" if inner else None
        if ip in _NAT64_LOCAL_USE:
            return f"{ip} is local-use NAT64 (64:ff9b:1::/48)"
        if ip.teredo is not None:
            # Teredo (2001::/32) tunnels to an obfuscated IPv4 client; never a web server.
            return f"{ip} is Teredo (client {ip.teredo[1]})"
    for flag in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{flag}"):
            return f"{ip} is {flag.replace('_', '-')}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return f"{ip} is site-local"
    if not ip.is_global:
        # What the flags above miss: 100.64.0.0/10 (carrier-grade NAT), 192.0.0.0/24,
        # 198.18.0.0/15 (benchmarking), documentation ranges, 2001::/23 protocol assignments.
        return f"{ip} is not globally routable"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d
        return ip.ipv4_mapped
    if ip.sixtofour is not None:  # 2002:aabb:ccdd::/48
        return ip.sixtofour
    if ip in _NAT64_WELL_KNOWN or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def parse_ip(text: str) -> IPAddress | None:
    """An IP literal (scope id and brackets stripped), or None for a hostname."""
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def split_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or BadScheme / BadURL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:  # bad port, unbalanced brackets
        raise BadURL(f"cannot parse {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise BadScheme(f"scheme {scheme or '(none)'!r} refused: only http and https are fetched")
    host = parts.hostname
    if not host:
        raise BadURL(f"no host in {url!r}")
    if any(ch in host for ch in " \t\r\n\\"):
        raise BadURL(f"invalid host {host!r}")
    return scheme, host, port if port is not None else (443 if scheme == "https" else 80)


def resolve(
    host: str, port: int, resolver: Resolver = socket.getaddrinfo, timeout: float | None = None
) -> list[IPAddress]:
    """All addresses `host` resolves to, in resolver order, without duplicates.

    getaddrinfo has no timeout of its own; with `timeout` set, it runs in a daemon thread and a
    late answer is abandoned (the thread ends when the system resolver gives up)."""
    literal = parse_ip(host)
    if literal is not None:
        return [literal]

    def lookup() -> Sequence[tuple[Any, ...]]:
        return resolver(host, port, 0, socket.SOCK_STREAM)

    try:
        infos = lookup() if timeout is None else _call_with_timeout(lookup, timeout)
    except TimeoutError:
        raise ResolutionError(f"no DNS answer for {host!r} within {timeout:.1f}s") from None
    except (OSError, UnicodeError) as exc:
        raise ResolutionError(f"cannot resolve {host!r}: {exc}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        ip = parse_ip(str(info[4][0]))
        if ip is not None and ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise ResolutionError(f"{host!r} resolved to no address")
    return addresses


def _call_with_timeout(fn: Callable[[], Any], timeout: float) -> Any:
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="newsdedup-dns", daemon=True).start()
    if not done.wait(max(timeout, 0.0)):
        raise TimeoutError
    if "error" in box:
        raise box["error"]
    return box["value"]


def check_addresses(host: str, addresses: Iterable[IPAddress]) -> None:
    """BlockedAddress if any address is refused: a name with one public and one private answer
    is refused too, since which one a connection gets is up to the resolver."""
    for ip in addresses:
        reason = blocked_reason(ip)
        if reason is not None:
            shown = reason if parse_ip(host) is not None else f"{host} -> {reason}"
            raise BlockedAddress(shown)


def check_url(
    url: str,
    allow_private: bool,
    resolver: Resolver = socket.getaddrinfo,
    *,
    timeout: float | None = None,
) -> None:
    """Raise BadScheme, BadURL, BlockedAddress or ResolutionError unless `url` may be fetched.

    With `allow_private` the scheme and syntax are still checked, but nothing is resolved."""
    _, host, port = split_url(url)
    if allow_private:
        return
    check_addresses(host, resolve(host, port, resolver, timeout))
