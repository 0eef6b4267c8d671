"""A small HTTP server for the bundled sample (or any directory) on 127.0.0.1, so that the demo
and the tests run the real fetch path. `__BASE_URL__` in served files becomes the server's URL."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"


class _Handler(SimpleHTTPRequestHandler):
    base_url = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the pipeline logs fetches
        return None

    def send_head(self) -> Any:
        path = Path(self.translate_path(self.path))
        if not (path.is_file() and path.suffix in {".xml", ".html", ".htm", ".txt"}):
            return super().send_head()
        body = path.read_bytes().replace(b"__BASE_URL__", self.base_url.encode())
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return None
        self.send_response(200)
        ctype = "application/rss+xml" if path.suffix == ".xml" else "text/html; charset=utf-8"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.end_headers()
        return io.BytesIO(body)


# The port the demo and `serve --sample` always use. An article's id is a hash of its URL, and
# a URL carries its port (two services on one host are two sites): a demo that moved to a free
# port when this one was busy gave every sample article a new id, and the next demo, back on
# this port, added them all again (issue #21, item 13).
SAMPLE_PORT = 8765


class SamplePortBusy(OSError):
    """The sample's port is held by a program that is not a newsdedup sample server."""


def _is_sample_server(base_url: str) -> bool:
    """Whether `base_url` serves this sample (another demo, or `serve --sample`, running)."""
    import urllib.request

    expected = (SAMPLE_DIR / "feed.xml").read_bytes().replace(b"__BASE_URL__", base_url.encode())
    try:
        with urllib.request.urlopen(f"{base_url}/feed.xml", timeout=5) as answer:  # noqa: S310
            return bool(answer.read(len(expected) + 1) == expected)
    except (OSError, ValueError):
        return False


@contextmanager
def sample_site(port: int = SAMPLE_PORT) -> Iterator[str]:
    """The bundled sample at http://127.0.0.1:`port`, always that port: served here, or, when a
    sample server already holds the port, that one. SamplePortBusy when another program does."""
    base_url = f"http://127.0.0.1:{port}"
    try:
        server = _bind(SAMPLE_DIR, port)
    except OSError as exc:
        if not _is_sample_server(base_url):
            raise SamplePortBusy(
                f"port {port} on 127.0.0.1 is in use by another program. The sample's article"
                " ids include the port, so the demo does not move to another one (a later demo"
                " would add every article again): stop that program, or use another port with"
                " a warehouse of its own, e.g. `newsdedup demo --port 8766 --warehouse"
                " demo-8766.duckdb`"
            ) from exc
        yield base_url  # another demo's server: the same pages at the same URLs
        return
    with _serving(server) as served:
        yield served


def _bind(directory: Path, port: int) -> ThreadingHTTPServer:
    handler = partial(type("Handler", (_Handler,), {}), directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    handler.func.base_url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    return server


@contextmanager
def _serving(server: ThreadingHTTPServer) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, name="sample-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_directory(directory: Path = SAMPLE_DIR, port: int = 0) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1; yields the base URL. `port` 0 takes a free port; a busy
    preferred port falls back to a free one."""
    try:
        server = _bind(directory, port)
    except OSError:
        server = _bind(directory, 0)
    with _serving(server) as base_url:
        yield base_url
