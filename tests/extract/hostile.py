"""A hostile web server on 127.0.0.1: the misbehaviour newsdedup must survive, plus good pages.

    with HostileServer() as server:
        server.url("/drip")          # http://127.0.0.1:PORT/drip
        server.hits["/drip"]         # how many requests that path received

Every route is generated lazily: the 2 GiB body and the gzip bomb are produced chunk by chunk
while the client keeps reading, never held. Bound to 127.0.0.1 on a free port, served from
daemon threads; `close()` releases the connections that are made to hang.
"""

from __future__ import annotations

import gzip
import random
import socket
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

DRIP_INTERVAL_S = 0.5
HUGE_BYTES = 2 * 1024**3  # 2 GiB announced and (if anyone kept reading) served
BOMB_BYTES = 10 * 1024**3  # the gzip bomb inflates to 10 GiB of spaces
CHUNK = 64 * 1024

# What each hostile path must end as, at the fetch stage and after cleaning. The feed served at
# /feed.xml lists exactly these plus the good articles.
HOSTILE: dict[str, str] = {
    "/drip": "timeout",
    "/drip-headers": "timeout",
    "/hang": "timeout",
    "/huge": "too_large",
    "/huge-chunked": "too_large",
    "/gzip-bomb": "too_large",
    "/retry-after": "deferred",
    "/loop": "too_many_redirects",
    "/chain/0": "too_many_redirects",
    "/pdf": "not_html",
    "/empty": "empty",
    "/random": "not_html",
    "/random-html": "not_html",
    "/404": "http_error",
    "/private/secret": "robots",
}
# Fetched fine (they are HTML) but must fail at cleaning: their reason comes from extraction,
# either of these (the cleaner decides whether "no text at all" differs from "too little").
FETCH_OK_CLEAN_FAILS: dict[str, tuple[str, ...]] = {
    "/script-only": ("too_short", "extraction_failed"),
}
N_GOOD = 5

_WORDS = (
    "council budget river bridge harbour election minister festival school hospital railway "
    "museum storm farmers court museum drought orchestra airport mayor union factory library "
    "stadium vaccine reservoir volunteers ferry parliament tariff census wildfire glacier"
).split()


def article_html(n: int, title: str | None = None) -> bytes:
    """A plausible news article whose text differs per `n` (seeded), about 600 words."""
    rng = random.Random(n)
    title = title or f"Report {n}: the {rng.choice(_WORDS)} and the {rng.choice(_WORDS)}"
    paragraphs = []
    for _ in range(8):
        words = [rng.choice(_WORDS) for _ in range(70)]
        words[0] = words[0].capitalize()
        paragraphs.append(f"<p>{' '.join(words)}.</p>")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title><meta property='og:title' content='{title}'>"
        "<meta name='author' content='A. Reporter'>"
        f"<meta property='article:published_time' content='2024-03-{1 + n % 28:02d}T08:00:00Z'>"
        "</head><body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
        f"<article><h1>{title}</h1><p class='byline'>By A. Reporter</p>{''.join(paragraphs)}"
        "</article><footer>Copyright The Hostile Times</footer></body></html>"
    ).encode()


SCRIPT_ONLY = (
    b"<!DOCTYPE html><html><head><script>var a = 1;</script></head><body>"
    b"<script>document.write('<p>' + 'x'.repeat(10) + '</p>');</script>"
    b"<script src='/app.js'></script><noscript></noscript></body></html>"
)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


class HostileServer:
    """The server, run in a background thread. Use as a context manager."""

    def __init__(self, robots: str = "User-agent: *\nDisallow: /private/\n") -> None:
        self.robots = robots
        self.hits: Counter[str] = Counter()
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port: int = self._server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._blackhole: socket.socket | None = None
        self._fillers: list[socket.socket] = []

    @property
    def blackhole_url(self) -> str:
        """A port whose TCP handshake never completes: a listener with backlog 0 whose queue
        is already full, so the kernel drops further SYNs (a firewalled or dead host)."""
        if self._blackhole is None:
            self._blackhole = socket.socket()
            self._blackhole.bind(("127.0.0.1", 0))
            self._blackhole.listen(0)
            port = self._blackhole.getsockname()[1]
            for _ in range(3):
                filler = socket.socket()
                filler.setblocking(False)
                try:
                    filler.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
                self._fillers.append(filler)
            time.sleep(0.1)  # let the handshakes that fit land in the queue
        return f"http://127.0.0.1:{self._blackhole.getsockname()[1]}/article/1"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def good_paths(self) -> list[str]:
        return [f"/article/{n}" for n in range(N_GOOD)]

    def bad_paths(self) -> list[str]:
        return [*HOSTILE, *FETCH_OK_CLEAN_FAILS]

    @property
    def total_hits(self) -> int:
        with self._lock:
            return sum(self.hits.values())

    def record(self, path: str) -> None:
        with self._lock:
            self.hits[path] += 1

    def start(self) -> HostileServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()
        for sock in [*self._fillers, *([self._blackhole] if self._blackhole else [])]:
            sock.close()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def feed_xml(self, paths: list[str] | None = None) -> bytes:
        paths = paths if paths is not None else [*self.good_paths(), *self.bad_paths()]
        items = "".join(
            f"<item><title>{escape(p)}</title><link>{escape(self.url(p))}</link>"
            "<pubDate>Mon, 04 Mar 2024 08:00:00 GMT</pubDate></item>"
            for p in paths
        )
        return (
            "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>Hostile Times</title><link>{self.url('/')}</link>"
            f"<description>every way a site can misbehave</description>{items}</channel></rss>"
        ).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 makes a burst of 16 clients see resets
    allow_reuse_address = True
    owner: HostileServer

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up on a 2 GiB body is the point, not an error


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: simple close-delimited bodies
    timeout = 60

    def log_message(self, format: str, *args: object) -> None:
        pass

    # Helpers -----------------------------------------------------------------------------

    @property
    def owner(self) -> HostileServer:
        return self.server.owner

    def send(self, status: int, body: bytes, content_type: str | None = "text/html; charset=utf-8",
             headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def stream(self, chunks: Iterator[bytes]) -> None:
        try:
            for chunk in chunks:
                if self.owner.stop.is_set():
                    return
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError, OSError):
            return

    def redirect(self, location: str, status: int = 302) -> None:
        self.send(status, b"", None, {"Location": location})

    # Routes ------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        path = parts.path
        self.owner.record(path)
        route = _ROUTES.get(path)
        if route is not None:
            route(self)
            return
        for prefix, handler in _PREFIX_ROUTES.items():
            if path.startswith(prefix):
                handler(self, path[len(prefix):], parse_qs(parts.query))
                return
        self.send(404, b"<html><body><h1>Not found</h1></body></html>")

    def robots_txt(self) -> None:
        if self.owner.robots is None:
            self.send(404, b"", "text/plain")
        else:
            self.send(200, self.owner.robots.encode(), "text/plain")

    def drip(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.stream(_dripped(b"<p>" + b"drip " * 20000))

    def drip_headers(self) -> None:
        # Even the status line arrives one byte per half second: a per-read timeout never fires.
        head = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nX-Padding: " + b"z" * 1000
        self.stream(_dripped(head))

    def hang(self) -> None:
        self.owner.stop.wait(120)  # request read, never answered

    def huge(self, chunked: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        if not chunked:
            self.send_header("Content-Length", str(HUGE_BYTES))
        self.end_headers()
        block = (b"<p>" + b"a" * (CHUNK - 3))
        self.stream(block for _ in range(HUGE_BYTES // CHUNK))

    def gzip_bomb(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        self.stream(_gzip_bomb(BOMB_BYTES))

    def retry_after(self) -> None:
        self.send(503, b"<html><body>Busy</body></html>", headers={"Retry-After": "3600"})

    def loop(self) -> None:
        self.redirect("/loop")

    def pdf(self) -> None:
        self.send(200, PDF, "application/pdf")

    def empty(self) -> None:
        self.send(200, b"")

    def random_bytes(self, content_type: str) -> None:
        self.send(200, random.Random(7).randbytes(64 * 1024), content_type)

    def not_found(self) -> None:
        self.send(404, b"<html><body><h1>Not found</h1></body></html>")

    def script_only(self) -> None:
        self.send(200, SCRIPT_ONLY)

    def feed(self) -> None:
        self.send(200, self.owner.feed_xml(), "application/rss+xml")

    def etag(self) -> None:
        if self.headers.get("If-None-Match") == '"v1"':
            self.send(304, b"", None, {"ETag": '"v1"'})
        else:
            self.send(200, article_html(99), headers={"ETag": '"v1"',
                      "Last-Modified": "Mon, 04 Mar 2024 08:00:00 GMT"})

    def flaky(self) -> None:
        if self.owner.hits["/flaky"] == 1:
            self.send(502, b"bad gateway")
        else:
            self.send(200, article_html(42))

    def latin1(self) -> None:
        body = "<html><head><title>Caf\xe9</title></head><body><p>Caf\xe9 cr\xe8me</p></body>"
        self.send(200, body.encode("latin-1"), "text/html; charset=ISO-8859-1")

    def no_content_type(self) -> None:
        self.send(200, article_html(7), None)

    def gzip_ok(self) -> None:
        self.send(200, gzip.compress(article_html(8)), headers={"Content-Encoding": "gzip"})

    def article(self, rest: str, query: dict[str, list[str]]) -> None:
        self.send(200, article_html(int(rest) if rest.isdigit() else 0))

    def chain(self, rest: str, query: dict[str, list[str]]) -> None:
        n = int(rest) if rest.isdigit() else 0
        self.redirect(f"/chain/{n + 1}")

    def redirect_to(self, rest: str, query: dict[str, list[str]]) -> None:
        self.redirect(query.get("to", ["/"])[0])

    def private(self, rest: str, query: dict[str, list[str]]) -> None:
        self.send(200, article_html(1000))

    def sitemap(self, rest: str, query: dict[str, list[str]]) -> None:
        self.send(200, _SITEMAPS[rest](self.owner), "application/xml")


def _dripped(data: bytes) -> Iterator[bytes]:
    for i in range(len(data)):
        yield data[i:i + 1]
        time.sleep(DRIP_INTERVAL_S)


def _gzip_bomb(total: int) -> Iterator[bytes]:
    """Gzip of `total` spaces, compressed as it is sent: each MiB of spaces is ~1 KiB on the
    wire (deflate's ceiling is ~1032:1), so a reader that inflates without a cap drowns."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1024 * 1024)
    for _ in range(total // len(block)):
        # Flushed per MiB so the client gets bytes at once (deflate would otherwise sit on
        # its output for many MiB); the flush marker costs 5 bytes per MiB.
        yield comp.compress(block) + comp.flush(zlib.Z_SYNC_FLUSH)
    yield comp.flush()


def _urlset(owner: HostileServer, paths: list[str], news: bool = False) -> bytes:
    ns = "xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'"
    if news:
        ns += " xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'"
    entries = []
    for p in paths:
        extra = ""
        if news:
            extra = (
                "<news:news><news:publication><news:name>Hostile Times</news:name>"
                "<news:language>en</news:language></news:publication>"
                "<news:publication_date>2024-03-04T08:00:00+00:00</news:publication_date>"
                f"<news:title>Title of {escape(p)}</news:title></news:news>"
            )
        entries.append(f"<url><loc>{escape(owner.url(p))}</loc>{extra}</url>")
    body = f"<?xml version='1.0' encoding='UTF-8'?><urlset {ns}>{''.join(entries)}</urlset>"
    return body.encode()


def _index(owner: HostileServer, names: list[str]) -> bytes:
    entries = "".join(f"<sitemap><loc>{owner.url('/sitemaps/' + n)}</loc></sitemap>" for n in names)
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{entries}</sitemapindex>"
    ).encode()


_SITEMAPS: dict[str, Callable[[HostileServer], bytes]] = {
    "articles.xml": lambda o: _urlset(o, o.good_paths()),
    "news.xml": lambda o: _urlset(o, ["/article/10", "/article/11"], news=True),
    "index.xml": lambda o: _index(o, ["articles.xml", "news.xml", "missing.xml"]),
    "self-index.xml": lambda o: _index(o, ["self-index.xml"]),  # recursion trap
    "deep0.xml": lambda o: _index(o, ["deep1.xml"]),
    "deep1.xml": lambda o: _index(o, ["deep2.xml"]),
    "deep2.xml": lambda o: _index(o, ["deep3.xml"]),
    "deep3.xml": lambda o: _index(o, ["deep4.xml"]),
    "deep4.xml": lambda o: _urlset(o, ["/article/20"]),
    "garbage.xml": lambda o: b"<?xml version='1.0'?><urlset><url><loc>unterminated",
    "articles.xml.gz": lambda o: gzip.compress(_urlset(o, o.good_paths())),
}




_ROUTES: dict[str, Callable[[_Handler], None]] = {
    "/robots.txt": _Handler.robots_txt,
    "/drip": _Handler.drip,
    "/drip-headers": _Handler.drip_headers,
    "/hang": _Handler.hang,
    "/huge": _Handler.huge,
    "/huge-chunked": lambda h: h.huge(chunked=True),
    "/gzip-bomb": _Handler.gzip_bomb,
    "/retry-after": _Handler.retry_after,
    "/loop": _Handler.loop,
    "/pdf": _Handler.pdf,
    "/empty": _Handler.empty,
    "/random": lambda h: h.random_bytes("application/octet-stream"),
    "/random-html": lambda h: h.random_bytes("text/html"),
    "/404": _Handler.not_found,
    "/script-only": _Handler.script_only,
    "/feed.xml": _Handler.feed,
    "/etag": _Handler.etag,
    "/flaky": _Handler.flaky,
    "/latin1": _Handler.latin1,
    "/no-content-type": _Handler.no_content_type,
    "/gzip-ok": _Handler.gzip_ok,
}


def _sitemap_route(h: _Handler, rest: str, query: dict[str, list[str]]) -> None:
    if rest not in _SITEMAPS:
        h.not_found()
    else:
        h.sitemap(rest, query)


_PREFIX_ROUTES: dict[str, Callable[[_Handler, str, dict[str, list[str]]], None]] = {
    "/article/": _Handler.article,
    "/chain/": _Handler.chain,
    "/redirect": _Handler.redirect_to,
    "/private/": _Handler.private,
    "/sitemaps/": _sitemap_route,
}


def free_port() -> int:
    """A TCP port nothing listens on right now (for 'connection refused' cases)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
