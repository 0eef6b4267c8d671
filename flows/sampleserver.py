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


@contextmanager
def serve_directory(directory: Path = SAMPLE_DIR, port: int = 0) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1; yields the base URL. `port` 0 takes a free port; a busy
    preferred port falls back to a free one."""
    handler = partial(type("Handler", (_Handler,), {}), directory=str(directory))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    handler.func.base_url = base_url  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, name="sample-server", daemon=True)
    thread.start()
    try:
        yield base_url
    finally:
        server.shutdown()
        server.server_close()
