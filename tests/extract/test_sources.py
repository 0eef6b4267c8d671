"""Discovery: feeds, sitemaps, URL lists, directories and WARC files -> Targets and failures."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from extract.feeds import parse_feed
from extract.fetch import Fetcher
from extract.policy import FetchPolicy
from extract.records import Reason, Source, SourceKind
from extract.sources import dedupe_targets, discover
from tests.extract.fetching import fetch_in_order
from tests.extract.hostile import HOSTILE, HostileServer, article_html, free_port

POLICY = FetchPolicy(allow_private_networks=True, total_timeout_s=1, connect_timeout_s=0.5,
                     per_host_delay_s=0, retries=0, max_bytes=1024 * 1024)


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as s:
        yield s


def run(kind: SourceKind, *locations: str, policy: FetchPolicy = POLICY):
    with Fetcher(policy) as fetcher:
        return discover(Source("src", kind, tuple(locations)), fetcher)


# --- Feeds ---------------------------------------------------------------------------------

def test_feed_lists_every_entry_with_hints(server: HostileServer) -> None:
    targets, failures = run(SourceKind.FEED, server.url("/feed.xml"))
    assert failures == []
    assert [t.url for t in targets] == [server.url(p) for p in
                                        [*server.good_paths(), *server.bad_paths()]]
    assert targets[0].title_hint == "/article/0" and targets[0].source == "src"
    assert targets[0].published_hint == datetime(2024, 3, 4, 8, tzinfo=UTC)
    assert all(t.body is None for t in targets)


def test_feed_on_loopback_is_refused_before_any_connection(server: HostileServer) -> None:
    before = server.total_hits
    targets, failures = run(SourceKind.FEED, server.url("/feed.xml"), policy=FetchPolicy())
    assert targets == []
    assert [f.status for f in failures] == [Reason.BLOCKED_ADDRESS]
    assert server.total_hits == before  # zero requests, not even robots.txt


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/article/1", Reason.BAD_FEED), ("/hang", Reason.TIMEOUT), ("/404", Reason.HTTP_ERROR),
     ("/empty", Reason.EMPTY), ("/loop", Reason.TOO_MANY_REDIRECTS)],
)
def test_feed_failures_are_recorded(server: HostileServer, path: str, reason: Reason) -> None:
    targets, [failure] = run(SourceKind.FEED, server.url(path))
    assert targets == [] and failure.status is reason and failure.source == "src"
    assert failure.url == server.url(path)


def test_unreachable_feed() -> None:
    targets, [failure] = run(SourceKind.FEED, f"http://127.0.0.1:{free_port()}/rss")
    assert failure.status is Reason.CONNECT_ERROR


def test_feed_that_is_too_big(server: HostileServer) -> None:
    small = FetchPolicy(allow_private_networks=True, total_timeout_s=2, connect_timeout_s=1,
                        per_host_delay_s=0, retries=0, max_document_bytes=1024 * 1024)
    _, [failure] = run(SourceKind.FEED, server.url("/gzip-bomb"), policy=small)
    assert failure.status is Reason.TOO_LARGE


def test_local_atom_feed_relative_links_and_dedupe(tmp_path: Path) -> None:
    atom = tmp_path / "feed.atom"
    atom.write_text(
        "<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'>"
        "<title>t</title><id>urn:x</id><updated>2025-01-07T10:00:00Z</updated>"
        "<entry><title>One</title><id>urn:1</id><link href='https://news.example/1'/>"
        "<updated>2025-01-07T09:00:00+01:00</updated></entry>"
        "<entry><title>Again</title><id>urn:2</id>"
        "<link href='https://NEWS.example/1?utm_source=atom#c'/></entry>"
        "<entry><title>No link</title><id>urn:3</id></entry>"
        "</feed>", encoding="utf-8")
    targets, failures = run(SourceKind.FEED, str(atom))
    assert [(t.url, t.title_hint) for t in targets] == [("https://news.example/1", "One")]
    assert targets[0].published_hint == datetime(2025, 1, 7, 8, tzinfo=UTC)
    assert [f.status for f in failures] == [Reason.BAD_FEED]
    assert "1 of 3 entries have no link" in failures[0].detail


def test_rss_relative_links_resolve_against_the_feed() -> None:
    rss = (b"<rss version='2.0'><channel><title>t</title>"
           b"<item><link>/story/1</link></item><item><link>story/2</link></item>"
           b"<item><link>mailto:desk@news.example</link></item></channel></rss>")
    targets, linkless = parse_feed(rss, "https://news.example/feeds/rss.xml", "s")
    assert [t.url for t in targets] == ["https://news.example/story/1",
                                        "https://news.example/feeds/story/2"]
    assert linkless == 1


# --- Sitemaps ------------------------------------------------------------------------------

def test_sitemap_index_recursion_and_news_dates(server: HostileServer) -> None:
    targets, failures = run(SourceKind.SITEMAP, server.url("/sitemaps/index.xml"))
    urls = [t.url for t in targets]
    assert urls == [server.url(p) for p in [*server.good_paths(), "/article/10", "/article/11"]]
    news = targets[-1]
    assert news.title_hint == "Title of /article/11"
    assert news.published_hint == datetime(2024, 3, 4, 8, tzinfo=UTC)
    assert [(f.status, f.url) for f in failures] == [
        (Reason.HTTP_ERROR, server.url("/sitemaps/missing.xml"))]


def test_sitemap_depth_cap_and_self_reference(server: HostileServer) -> None:
    targets, [failure] = run(SourceKind.SITEMAP, server.url("/sitemaps/deep0.xml"))
    assert targets == [] and failure.status is Reason.TOO_LARGE
    assert "max_sitemap_depth=3" in failure.detail
    deeper = FetchPolicy(allow_private_networks=True, total_timeout_s=1, connect_timeout_s=0.5,
                         per_host_delay_s=0, retries=0, max_sitemap_depth=4)
    targets, failures = run(SourceKind.SITEMAP, server.url("/sitemaps/deep0.xml"), policy=deeper)
    assert [t.url for t in targets] == [server.url("/article/20")] and failures == []
    assert run(SourceKind.SITEMAP, server.url("/sitemaps/self-index.xml")) == ([], [])


def test_sitemap_caps_on_documents_and_targets(server: HostileServer) -> None:
    few = FetchPolicy(allow_private_networks=True, total_timeout_s=1, connect_timeout_s=0.5,
                      per_host_delay_s=0, retries=0, max_sitemaps=2, max_targets_per_source=3)
    targets, failures = run(SourceKind.SITEMAP, server.url("/sitemaps/index.xml"), policy=few)
    assert len(targets) == 3
    assert {f.status for f in failures} == {Reason.TOO_LARGE}
    assert any("max_targets_per_source=3" in f.detail for f in failures)


def test_gzipped_garbage_and_text_sitemaps(server: HostileServer, tmp_path: Path) -> None:
    targets, failures = run(SourceKind.SITEMAP, server.url("/sitemaps/articles.xml.gz"))
    assert len(targets) == len(server.good_paths()) and failures == []
    _, [bad] = run(SourceKind.SITEMAP, server.url("/sitemaps/garbage.xml"))
    assert bad.status is Reason.BAD_FEED and "well-formed" in bad.detail
    text = tmp_path / "sitemap.txt"
    text.write_text("https://a.example/1\n\nhttps://a.example/2\n")
    targets, _ = run(SourceKind.SITEMAP, str(text))
    assert [t.url for t in targets] == ["https://a.example/1", "https://a.example/2"]


def test_sitemap_xml_attacks_do_nothing(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    xxe = tmp_path / "xxe.xml"
    xxe.write_text(
        f"<?xml version='1.0'?><!DOCTYPE u [<!ENTITY x SYSTEM '{secret.as_uri()}'>]>"
        "<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
        "<url><loc>https://a.example/&x;</loc></url></urlset>")
    targets, _ = run(SourceKind.SITEMAP, str(xxe))
    assert all("SECRET" not in t.url for t in targets)
    laughs = tmp_path / "laughs.xml"
    entities = "".join(f"<!ENTITY l{i} '{('&l' + str(i - 1) + ';') * 10}'>" for i in range(1, 10))
    laughs.write_text(
        f"<?xml version='1.0'?><!DOCTYPE u [<!ENTITY l0 'ha'>{entities}]>"
        "<urlset><url><loc>https://a.example/&l9;</loc></url></urlset>")
    targets, _ = run(SourceKind.SITEMAP, str(laughs))
    assert all(len(t.url) < 1000 for t in targets)


# --- URL lists -----------------------------------------------------------------------------

def test_inline_urls_and_url_files(tmp_path: Path) -> None:
    listing = tmp_path / "urls.txt"
    listing.write_text(
        "# morning run\nhttps://a.example/1\n\n   https://a.example/2  \n"
        "https://a.example/1#dup\nftp://a.example/x\nnot a url\n")
    targets, failures = run(SourceKind.URLS, "https://b.example/x", str(listing),
                            "gopher://c.example/", str(tmp_path / "missing.txt"))
    assert [t.url for t in targets] == ["https://b.example/x", "https://a.example/1",
                                        "https://a.example/2"]
    assert [f.status for f in failures] == [Reason.BAD_SCHEME, Reason.BAD_SCHEME,
                                            Reason.BAD_SCHEME, Reason.BAD_URL]
    assert "urls.txt:6" in failures[0].detail


# --- Directories ---------------------------------------------------------------------------

def test_directory_walk(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a.html").write_bytes(article_html(1))
    (tmp_path / "b" / "c.htm").write_bytes(article_html(2))
    (tmp_path / "b" / "d.html.gz").write_bytes(gzip.compress(article_html(3)))
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "broken.html.gz").write_bytes(b"\x1f\x8bnot really gzip")
    (tmp_path / "huge.html").write_bytes(b"<p>" + b"x" * (1024 * 1024))
    (tmp_path / "bomb.html.gz").write_bytes(gzip.compress(b" " * (4 * 1024 * 1024)))
    targets, failures = run(SourceKind.DIRECTORY, str(tmp_path))
    names = [t.url.rsplit("/", 1)[-1] for t in targets]
    assert names == ["a.html", "bomb.html.gz", "broken.html.gz", "c.htm", "d.html.gz"]
    assert all(t.url.startswith("file:///") and t.body is None and t.local_path for t in targets)
    assert [(f.url.rsplit("/", 1)[-1], f.status) for f in failures] == [
        ("huge.html", Reason.TOO_LARGE)]  # known from its size alone
    pages = fetch_in_order(targets, POLICY)  # read from disk now; no HTTP at all
    assert [p.status for p in pages] == [Reason.OK, Reason.TOO_LARGE, Reason.DECODE_ERROR,
                                         Reason.OK, Reason.OK]
    assert pages[0].body == article_html(1) and pages[4].body == article_html(3)  # gunzipped
    assert pages[0].url == targets[0].url and pages[0].content_type == "text/html"


def test_a_vanished_local_file_is_recorded(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_bytes(article_html(1))
    targets, _ = run(SourceKind.DIRECTORY, str(tmp_path))
    (tmp_path / "a.html").unlink()
    [page] = fetch_in_order(targets, POLICY)
    assert page.status is Reason.BAD_URL and "cannot read" in page.detail


def test_missing_directory() -> None:
    _, [failure] = run(SourceKind.DIRECTORY, "/nonexistent/dir")
    assert failure.status is Reason.BAD_URL


# --- WARC ----------------------------------------------------------------------------------

def _warc(path: Path) -> None:
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)

        def response(url: str, status: str, ctype: str, payload: bytes, **extra: str) -> None:
            headers = [("Content-Type", ctype), *extra.items()]
            http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
            record = writer.create_warc_record(url, "response", payload=io.BytesIO(payload),
                                               http_headers=http)
            writer.write_record(record)

        response("https://news.example/1", "200 OK", "text/html; charset=utf-8", article_html(1))
        response("https://news.example/2", "200 OK", "text/html",
                 gzip.compress(article_html(2)), **{"Content-Encoding": "gzip"})
        response("https://news.example/doc.pdf", "200 OK", "application/pdf", b"%PDF-1.4")
        response("https://news.example/moved", "301 Moved", "text/html", b"")
        response("https://news.example/big", "200 OK", "text/html", b"<p>" + b"x" * 2_000_000)
        request = writer.create_warc_record("https://news.example/1", "request",
                                            payload=io.BytesIO(b"GET /1 HTTP/1.1\r\n\r\n"))
        writer.write_record(request)


def test_warc_records(tmp_path: Path) -> None:
    path = tmp_path / "news.warc.gz"
    _warc(path)
    targets, failures = run(SourceKind.WARC, str(path))
    assert [t.url for t in targets] == ["https://news.example/1", "https://news.example/2",
                                        "https://news.example/big"]
    assert all(t.body is None and t.warc_offset is not None for t in targets)  # listed only
    assert targets[0].content_type == "text/html; charset=utf-8"
    assert [(f.url, f.status) for f in failures] == [
        ("https://news.example/doc.pdf", Reason.NOT_HTML)]
    pages = fetch_in_order(targets, POLICY)  # each record read by its offset, gunzipped payload
    assert [p.status for p in pages] == [Reason.OK, Reason.OK, Reason.TOO_LARGE]
    assert pages[0].body == article_html(1) and pages[1].body == article_html(2)
    assert pages[0].encoding == "utf-8"
    wrong = replace(targets[0], warc_offset=3)  # not the start of a record
    assert fetch_in_order([wrong], POLICY)[0].status is Reason.DECODE_ERROR


def test_unreadable_warc(tmp_path: Path) -> None:
    junk = tmp_path / "junk.warc"
    junk.write_bytes(b"garbage" * 1000)
    targets, failures = run(SourceKind.WARC, str(junk))
    assert targets == [] and [f.status for f in failures] == [Reason.DECODE_ERROR]
    assert len(failures[0].detail) < 300
    _, [missing] = run(SourceKind.WARC, str(tmp_path / "nope.warc.gz"))
    assert missing.status is Reason.BAD_URL


def test_dedupe_targets_across_sources(server: HostileServer) -> None:
    a, _ = run(SourceKind.FEED, server.url("/feed.xml"))
    b, _ = run(SourceKind.SITEMAP, server.url("/sitemaps/articles.xml"))
    merged = dedupe_targets([*a, *b])
    assert len(merged) == len(a) == len(server.good_paths()) + len(server.bad_paths())
    assert len(HOSTILE) < len(merged)


def test_a_huge_feed_is_parsed_only_up_to_the_cap(tmp_path: Path) -> None:
    # Issue #21, item 6: 100,000 items cost 41 s of parsing to keep ten.
    import time

    items = "".join(f"<item><title>Story {n}</title><link>https://news.example/{n}</link></item>"
                    for n in range(100_000))
    feed = tmp_path / "feed.xml"
    feed.write_text(f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}'
                    "</channel></rss>")
    t0 = time.monotonic()
    targets, failures = run(SourceKind.FEED, str(feed),
                            policy=replace(POLICY, max_targets_per_source=10))
    assert time.monotonic() - t0 < 5
    assert [t.url for t in targets] == [f"https://news.example/{n}" for n in range(10)]
    [failure] = failures
    assert failure.status is Reason.TOO_LARGE and "max_targets_per_source=10" in failure.detail


def test_cutting_a_feed_keeps_atom_entries_and_skips_rss1_items() -> None:
    from extract.feeds import cut_entries

    atom = (b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><link href="https://a/1"/></entry>'
            b'<entry><link href="https://a/2"/></entry><entry><link href="https://a/3"/></entry>'
            b"</feed>")
    targets, _ = parse_feed(cut_entries(atom, 2), "https://a/", "s")
    assert [t.url for t in targets] == ["https://a/1", "https://a/2"]
    rss1 = b"<rdf:RDF><channel><items><rdf:Seq/></items></channel><item>x</item></rdf:RDF>"
    assert cut_entries(rss1, 1) == rss1
