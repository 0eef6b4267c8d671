"""URL identity: one page under two addresses gets one canonical URL and one id."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from extract.urls import canonicalize, same_site, site_of, url_id


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a#section", "https://example.com/a"),
        ("https://example.com/a?utm_source=x&b=2&a=1&fbclid=z", "https://example.com/a?a=1&b=2"),
        ("https://example.com/a?", "https://example.com/a"),
        ("https://user:secret@example.com/a", "https://example.com/a"),
        ("https://example.com./a", "https://example.com/a"),
        ("https://example.com/a/./b/../c", "https://example.com/a/c"),
        ("https://example.com/%7euser/%2f", "https://example.com/~user/%2F"),
        ("https://BÜCHER.de/x", "https://xn--bcher-kva.de/x"),
        ("http://[2001:DB8::1]:8080/x", "http://[2001:db8::1]:8080/x"),
        ("http://[2001:db8::1]:80/x", "http://[2001:db8::1]/x"),
        ("  https://example.com/a  ", "https://example.com/a"),
    ],
)
def test_canonical_forms(url: str, expected: str) -> None:
    assert canonicalize(url) == expected


def test_broken_urls_do_not_raise() -> None:
    assert canonicalize("http://example.com:99999/x") == "http://example.com:99999/x"
    assert canonicalize("http://[::1/x") == "http://[::1/x"
    assert site_of("http://[::1/x") == ""


def test_file_uris_keep_their_path() -> None:
    assert canonicalize("file:///tmp/a%20b.html") == "file:///tmp/a%20b.html"


def test_site_and_same_site() -> None:
    assert site_of("https://www.Example.com/a") == "example.com"
    assert same_site("https://www.example.com/a", "http://example.com/b")
    assert not same_site("https://example.com/a", "https://example.org/a")
    assert not same_site("file:///a", "file:///b")  # no host: never the same site


def test_url_id_is_stable_across_spellings() -> None:
    a = url_id("https://Example.com/story?utm_medium=rss#top")
    assert a == url_id("https://example.com:443/story")
    assert len(a) == 16 and a != url_id("https://example.com/other")


_segment = st.text(alphabet="abcAZ09-._~%/:@!$&'()*+,;=", max_size=12)


@given(
    scheme=st.sampled_from(["http", "https", "HTTP"]),
    host=st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}(\.[A-Za-z]{2,4}){1,2}\.?", fullmatch=True),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    path=st.lists(_segment, max_size=4),
    query=st.lists(st.tuples(st.sampled_from(["a", "b", "utm_x", "ref", "Q"]), _segment),
                   max_size=4),
    fragment=_segment,
)
def test_canonicalize_is_idempotent(
    scheme: str, host: str, port: int | None, path: list[str],
    query: list[tuple[str, str]], fragment: str,
) -> None:
    netloc = host if port is None else f"{host}:{port}"
    q = "&".join(f"{k}={v}" for k, v in query)
    url = f"{scheme}://{netloc}/{'/'.join(path)}?{q}#{fragment}"
    once = canonicalize(url)
    assert canonicalize(once) == once
    assert "#" not in once and "utm_" not in once
