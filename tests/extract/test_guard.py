"""The address guard: what may be contacted, checked after DNS and pinned at connect time."""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from extract import guard
from extract.guard import BadScheme, BadURL, BlockedAddress, ResolutionError, check_url
from extract.http import GuardedBackend, GuardedTransport
from extract.policy import FetchPolicy
from extract.records import Reason, Target
from tests.extract.fetching import fetch_in_order
from tests.extract.hostile import HostileServer


def fake_resolver(table: dict[str, list[str]]) -> guard.Resolver:
    """getaddrinfo over a fixed table: hostname -> addresses."""

    def resolve(host: str, port: int, family: int = 0, type: int = 0, *rest: Any) -> list[Any]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "",
             (ip, port))
            for ip in table[host]
        ]

    return resolve


BLOCKED = [
    "127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1",
    "192.0.2.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fec0::1", "fc00::1", "fd12:3456::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b:1::1",
    "2002:7f00:1::1", "2002:a00:1::", "2002:a9fe:a9fe::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "2001:db8::1",  # documentation
]
ALLOWED = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
           "64:ff9b::808:808", "2002:808:808::1"]


@pytest.mark.parametrize("ip", BLOCKED)
def test_blocked_addresses(ip: str) -> None:
    assert guard.blocked_reason(ipaddress.ip_address(ip)) is not None
    with pytest.raises(BlockedAddress):
        check_url(f"http://{'[' + ip + ']' if ':' in ip else ip}/", allow_private=False)


@pytest.mark.parametrize("ip", ALLOWED)
def test_public_addresses_pass(ip: str) -> None:
    assert guard.blocked_reason(ipaddress.ip_address(ip)) is None


@given(st.ip_addresses(v=4))
def test_embedded_ipv4_is_judged_like_the_ipv4(v4: ipaddress.IPv4Address) -> None:
    blocked = guard.blocked_reason(v4) is not None
    n = int(v4)
    for v6 in (
        ipaddress.IPv6Address(0xFFFF << 32 | n),  # ::ffff:a.b.c.d
        ipaddress.IPv6Address(0x0064FF9B << 96 | n),  # 64:ff9b::a.b.c.d
        ipaddress.IPv6Address(0x2002 << 112 | n << 80),  # 6to4 2002:aabb:ccdd::
    ):
        assert (guard.blocked_reason(v6) is not None) == blocked, v6


@pytest.mark.parametrize(
    "url", ["ftp://example.com/a", "file:///etc/passwd", "javascript:alert(1)",
            "data:text/html,hi", "gopher://example.com/", "example.com/no-scheme"],
)
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(BadScheme):
        check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["http://", "http:///path", "http://[::1/x", "http://a.com:99999/",
                                 "http://exa mple.com/"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(BadURL):
        check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["http://127.1/", "http://2130706433/", "http://0x7f000001/",
                                 "http://localhost/", "http://[::ffff:7f00:1]/"])
def test_odd_spellings_of_loopback_are_caught_after_resolution(url: str) -> None:
    with pytest.raises(BlockedAddress):
        check_url(url, allow_private=False)


def test_a_name_with_one_private_answer_is_refused() -> None:
    resolver = fake_resolver({"mixed.example": ["93.184.216.34", "10.0.0.7"]})
    with pytest.raises(BlockedAddress, match="mixed.example -> 10.0.0.7"):
        check_url("https://mixed.example/", False, resolver)
    check_url("https://ok.example/", False, fake_resolver({"ok.example": ["93.184.216.34"]}))


def test_allow_private_skips_resolution() -> None:
    def explode(*args: Any) -> list[Any]:
        raise AssertionError("must not resolve")

    check_url("http://10.0.0.1/", True, explode)
    check_url("http://anything.internal/", True, explode)


def test_unresolvable_and_slow_dns() -> None:
    with pytest.raises(ResolutionError):
        check_url("http://nowhere.example/", False, fake_resolver({}))

    def slow(*args: Any) -> list[Any]:
        time.sleep(3)
        return []

    started = time.monotonic()
    with pytest.raises(ResolutionError, match="within"):
        check_url("http://slow.example/", False, slow, timeout=0.2)
    assert time.monotonic() - started < 1.0


def test_guarded_transport_connects_through_the_guarded_backend() -> None:
    """GuardedTransport hands httpcore's pool its network backend through the public
    `network_backend` parameter (no private attribute is replaced); the backend it built is the
    guarded one, so every connection is checked at connect time."""
    transport = GuardedTransport(FetchPolicy(), socket.getaddrinfo)
    assert isinstance(transport.network_backend, GuardedBackend)
    transport.close()


POLICY = FetchPolicy(total_timeout_s=2, connect_timeout_s=1, per_host_delay_s=0, retries=0)


def test_dns_rebinding_is_pinned_at_connect() -> None:
    """A name that answers public for the check, then 127.0.0.1: the connection re-resolves,
    re-checks and refuses; the server sees nothing."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    def rebinding(host: str, port: int, *rest: Any) -> list[Any]:
        return list(fake_resolver({host: next(answers)})(host, port))

    with HostileServer() as server:
        url = f"http://rebind.example:{server.port}/article/1"
        no_robots = FetchPolicy(total_timeout_s=2, connect_timeout_s=1, per_host_delay_s=0,
                                retries=0, respect_robots=False)
        [page] = fetch_in_order([Target(url, "t")], no_robots, resolver=rebinding)
        assert page.status is Reason.BLOCKED_ADDRESS, page.detail
        assert "rebind.example -> 127.0.0.1 is loopback" in page.detail
        assert server.total_hits == 0


def test_connection_goes_to_the_checked_address() -> None:
    """With private networks allowed, a fake name mapped to 127.0.0.1 by the injected resolver
    reaches the local server: the transport connects where the resolver said, nowhere else."""
    policy = FetchPolicy(allow_private_networks=True, total_timeout_s=2, connect_timeout_s=1,
                         per_host_delay_s=0, retries=0, respect_robots=False)
    with HostileServer() as server:
        resolver = fake_resolver({"news.test": ["127.0.0.1"]})
        [page] = fetch_in_order([Target(f"http://news.test:{server.port}/article/3", "t")], policy,
                           resolver=resolver)
        assert page.status is Reason.OK
        assert server.hits["/article/3"] == 1


def test_redirect_from_public_host_to_private_is_refused() -> None:
    """news.example is public (resolver: 93.184.216.34, served by a MockTransport); it redirects
    to the local server and to a name resolving to 10.0.0.5. Both hops are refused and the
    local server sees zero requests."""
    with HostileServer() as server:
        resolver = fake_resolver({"news.example": ["93.184.216.34"],
                                  "intranet.example": ["10.0.0.5"]})
        locations = {
            "/to-loopback": server.url("/article/1"),
            "/to-intranet": "http://intranet.example/admin",
            "/to-metadata": "http://169.254.169.254/latest/meta-data/",
            "/to-file": "file:///etc/passwd",
        }

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.host != "news.example":
                raise AssertionError(f"private host contacted: {request.url}")
            if request.url.path == "/robots.txt":
                return httpx.Response(404)
            return httpx.Response(302, headers={"Location": locations[request.url.path]})

        targets = [Target(f"http://news.example{p}", "t") for p in locations]
        pages = fetch_in_order(targets, POLICY, transport=httpx.MockTransport(handler),
                          resolver=resolver)
        assert [p.status for p in pages] == [Reason.BLOCKED_ADDRESS] * 3 + [Reason.BAD_SCHEME]
        assert all("redirect hop 1" in p.detail for p in pages)
        assert pages[0].final_url == server.url("/article/1")
        assert server.total_hits == 0


def test_private_target_refused_before_any_connection() -> None:
    with HostileServer() as server:
        [page] = fetch_in_order([Target(server.url("/article/1"), "t")], POLICY)
        assert page.status is Reason.BLOCKED_ADDRESS
        assert "127.0.0.1 is loopback" in page.detail
        assert server.total_hits == 0  # not even robots.txt


def _self_signed(tmp_path: Any, name: str) -> tuple[str, str]:
    crypto = pytest.importorskip("cryptography")
    del crypto
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_https_through_the_guarded_backend(tmp_path: Any) -> None:
    """TLS runs over the pinned, deadline-bound stream, with SNI and certificate checks for
    the URL's hostname (not the IP the connection was pinned to)."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    cert, key = _self_signed(tmp_path, "news.test")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b"<!DOCTYPE html><p>over tls</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        policy = FetchPolicy(allow_private_networks=True, total_timeout_s=2, connect_timeout_s=1,
                             per_host_delay_s=0, retries=0, respect_robots=False)
        resolver = fake_resolver({"news.test": ["127.0.0.1"], "wrong.test": ["127.0.0.1"]})
        client_ctx = ssl.create_default_context(cafile=cert)
        targets = [Target(f"https://{name}:{port}/a", "t") for name in ("news.test", "wrong.test")]
        pages = fetch_in_order(
            targets,
            policy,
            transport=GuardedTransport(policy, resolver, ssl_context=client_ctx),
            resolver=resolver,
        )
        assert pages[0].ok and pages[0].body == b"<!DOCTYPE html><p>over tls</p>"
        assert pages[1].status is Reason.CONNECT_ERROR
        assert "certificate" in pages[1].detail.lower() or "hostname" in pages[1].detail.lower()
    finally:
        server.shutdown()
        server.server_close()
