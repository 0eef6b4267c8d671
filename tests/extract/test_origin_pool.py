"""httpcore's pool under GuardedTransport (extract/http.py): keep-alive connections are reused
per origin, and a connection that cannot serve another request (body left unread, server said
close) is never handed out."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from extract.fetch import Fetcher
from extract.policy import FetchPolicy
from extract.records import Reason, Target

PAGE = b"<!DOCTYPE html><p>" + b"kept alive " * 50 + b"</p>"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the response says otherwise

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.peers.append(self.client_address[1])  # type: ignore[attr-defined]
        body = PAGE * 200 if self.path == "/big" else PAGE
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        if self.path == "/close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.peers = []  # type: ignore[attr-defined]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _fetch(fetcher: Fetcher, server: ThreadingHTTPServer, path: str) -> Reason:
    url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    return fetcher.fetch(Target(url, "s")).status


def test_connections_are_reused_per_origin_and_dropped_when_they_cannot_be(
    server: ThreadingHTTPServer,
) -> None:
    policy = FetchPolicy(allow_private_networks=True, per_host_delay_s=0, retries=0,
                         respect_robots=False, max_bytes=len(PAGE) * 10)
    peers: list[int] = server.peers  # type: ignore[attr-defined]
    with Fetcher(policy) as fetcher:
        assert [_fetch(fetcher, server, "/a") for _ in range(3)] == [Reason.OK] * 3
        assert len(set(peers)) == 1  # one keep-alive connection for three requests
        # Over max_bytes: the body is left unread, so that connection must not be reused.
        assert _fetch(fetcher, server, "/big") is Reason.TOO_LARGE
        assert _fetch(fetcher, server, "/a") is Reason.OK
        assert peers[-1] != peers[-2]
        # The server closes after answering: the next request opens a new connection.
        assert _fetch(fetcher, server, "/close") is Reason.OK
        assert _fetch(fetcher, server, "/a") is Reason.OK
        assert peers[-1] != peers[-2]
