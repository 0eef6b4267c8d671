"""HTTP transport: httpcore's own connection pool over a guarded network backend.

`GuardedTransport` is an httpx transport (what `Fetcher` sends its requests through; tests pass
`httpx.MockTransport` instead) around `httpcore.ConnectionPool`, built with httpcore's public
`network_backend` parameter. `GuardedBackend` opens every TCP connection to an address that
passed the address guard (extract.guard) in the same resolution, and wraps its stream so that
every read, write and TLS handshake ends by the request's total deadline (`set_deadline`): a
server that drips one byte a second resets any per-read timeout, never the total one.

Keep-alive connections are pooled per origin by httpcore; how many requests are in flight is
bounded before they get here, by the Fetcher's limits (extract.policy.HostLimiter).
"""

from __future__ import annotations

import functools
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

from extract import guard
from extract.policy import FetchPolicy

# Idle keep-alive connections are closed after this many seconds: well under the 60 s and more
# that servers commonly keep them, so a reused connection is rarely one the server has dropped.
KEEPALIVE_EXPIRY_S = 5.0


@functools.lru_cache(maxsize=1)
def default_ssl_context() -> ssl.SSLContext:
    """certifi's roots, loaded once per process: loading them is slow enough (tens of
    milliseconds) that a run must not pay it for every Fetcher."""
    return httpx.create_ssl_context(trust_env=False)


_deadline = threading.local()


def set_deadline(deadline: float | None) -> None:
    """The time.monotonic() instant by which this thread's current request must be done.
    Every socket operation of the guarded backend is bounded by it, so a server that drips one
    byte per second (which resets any per-read timeout) still cannot hold a request past it."""
    _deadline.value = deadline


def _remaining(timeout: float | None, exc: type[Exception]) -> float | None:
    deadline = getattr(_deadline, "value", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise exc("total deadline passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read, write and TLS handshake ends by the thread's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _remaining(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _remaining(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(
            ssl_context, server_hostname, _remaining(timeout, httpcore.ConnectTimeout)
        )
        return DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, but every TCP connection is opened to an address that passed
    the guard in the same resolution, and its stream honours the thread's total deadline."""

    def __init__(self, allow_private: bool, resolver: guard.Resolver = socket.getaddrinfo) -> None:
        self._allow_private = allow_private
        self._resolver = resolver
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _remaining(timeout, httpcore.ConnectTimeout)
        try:
            addresses = guard.resolve(host, port, self._resolver, timeout)
        except guard.ResolutionError as exc:
            raise httpcore.ConnectError(str(exc)) from None
        if not self._allow_private:
            guard.check_addresses(host, addresses)
        last: Exception | None = None
        for ip in addresses:
            try:
                stream = self._backend.connect_tcp(
                    str(ip),
                    port,
                    _remaining(timeout, httpcore.ConnectTimeout),
                    local_address,
                    socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                continue
            return DeadlineStream(stream)
        assert last is not None
        raise last

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise guard.BlockedAddress("unix sockets are never fetched")


class _ResponseStream(httpx.SyncByteStream):
    """httpcore's response body as an httpx stream: raw bytes, no decoding (the Fetcher undoes
    Content-Encoding itself, within its cap)."""

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class GuardedTransport(httpx.BaseTransport):
    """httpx's transport interface over `httpcore.ConnectionPool` and `GuardedBackend`.

    HTTP/1.1 only, no retries of its own (the Fetcher retries what is transient) and no proxy
    or environment settings: a crawler's requests go where its URLs say."""

    def __init__(
        self,
        policy: FetchPolicy,
        resolver: guard.Resolver = socket.getaddrinfo,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        # certifi's roots by default; a caller behind a corporate CA (or a test) passes one.
        self.network_backend = GuardedBackend(policy.allow_private_networks, resolver)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or default_ssl_context(),
            max_connections=None,  # the Fetcher's limits bound the requests in flight
            # Idle connections kept: one per request that may be in flight at once.
            max_keepalive_connections=policy.concurrency,
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
            network_backend=self.network_backend,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        response = self._pool.handle_request(
            httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=request.url.raw_scheme,
                    host=request.url.raw_host,
                    port=request.url.port,
                    target=request.url.raw_path,
                ),
                headers=request.headers.raw,
                content=request.stream,
                extensions=request.extensions,
            )
        )
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
