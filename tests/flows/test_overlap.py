"""Each source is fetched as soon as it is discovered: a slow feed holds up only its own pages.
One in-process flow run against a local server whose second feed answers after 3 s."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.extract.hostile import article_html

SLOW_FEED_S = 3.0


class _Site(ThreadingHTTPServer):
    daemon_threads = True
    # path -> time.monotonic() when the request arrived / when its answer was sent
    asked: dict[str, float]
    answered: dict[str, float]


class _Handler(BaseHTTPRequestHandler):
    server: _Site

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.asked[self.path] = time.monotonic()
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path.endswith("/feed.xml"):
            site = self.path.split("/")[1]
            if site == "slow":
                time.sleep(SLOW_FEED_S)
            items = "".join(f"<item><title>{site} {n}</title><link>{base}/{site}/{n}.html</link>"
                            "</item>" for n in range(2))
            body = (f"<?xml version='1.0'?><rss version='2.0'><channel><title>{site}</title>"
                    f"<link>{base}/</link>{items}</channel></rss>").encode()
            ctype = "application/rss+xml"
        elif self.path.endswith(".html"):
            n = int(self.path.rsplit("/", 1)[1].split(".")[0])
            body, ctype = article_html(n + (10 if "slow" in self.path else 0)), "text/html"
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.answered[self.path] = time.monotonic()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture()
def site() -> Iterator[_Site]:
    server = _Site(("127.0.0.1", 0), _Handler)
    server.asked, server.answered = {}, {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_slow_feed_does_not_hold_up_the_other_source(
    prefect_harness: None, site: _Site, tmp_path: Path
) -> None:
    from flows.pipeline import ingest

    base = f"http://127.0.0.1:{site.server_address[1]}"
    config = tmp_path / "newsdedup.toml"
    config.write_text(f"""
[warehouse]
path = {str(tmp_path / "w.duckdb")!r}

[fetch]
allow_private_networks = true
per_host_delay_s = 0.0

[[sources]]
name = "slow"
feed = "{base}/slow/feed.xml"

[[sources]]
name = "fast"
feed = "{base}/fast/feed.xml"
""", encoding="utf-8")
    summary = ingest(str(config))
    assert summary.counts.n_fetched == 4
    slow_feed_done = site.answered["/slow/feed.xml"]
    # The fast source's pages were fetched while the slow feed was still being answered.
    assert site.answered["/fast/0.html"] < slow_feed_done
    assert site.answered["/fast/1.html"] < slow_feed_done
    assert site.asked["/slow/0.html"] >= slow_feed_done
