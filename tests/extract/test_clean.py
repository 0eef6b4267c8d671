"""clean_page / clean_html on small saved pages: text, metadata, identity and named failures."""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from extract.clean import (
    MIN_WORDS,
    choose_title,
    clean_html,
    clean_page,
    clean_title,
    count_words,
    normalize_text,
    parse_datetime,
)
from extract.records import FetchedPage, Reason
from extract.urls import url_id

PARAGRAPHS = [
    "The city council voted on Tuesday to expand the northern tram line by six kilometres, "
    "adding four stations between the harbour and the university district.",
    "Construction is expected to begin next spring and to last roughly three years, according "
    "to the transport department, which put the total cost at 240 million euros.",
    "Opponents argued that the money would be better spent on buses, while shop owners along "
    "the route worried about two years of roadworks in front of their doors.",
    "The mayor said the extension would take an estimated eleven thousand cars off the road "
    "each day and promised compensation for businesses hit by the works.",
]


def article_page(
    title: str = "Council approves tram extension - Harbour Times",
    head: str = "",
    paragraphs: list[str] | None = None,
    charset: str = "utf-8",
) -> str:
    body = "".join(f"<p>{p}</p>" for p in (PARAGRAPHS if paragraphs is None else paragraphs))
    return (
        f'<!DOCTYPE html><html lang="en-GB"><head><meta charset="{charset}"><title>{title}</title>'
        f"{head}</head><body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
        f"<article><h1>Council approves tram extension</h1>{body}</article>"
        "<footer>© Harbour Times. All rights reserved.</footer></body></html>"
    )


def fetched(html: bytes, url: str = "https://www.harbour.example/news/tram?utm_source=x",
            **kw: object) -> FetchedPage:
    fields: dict[str, object] = dict(url=url, final_url=url, source="harbour", status=Reason.OK,
                                     fetched_at=datetime(2025, 1, 1, tzinfo=UTC), body=html)
    fields.update(kw)
    return FetchedPage(**fields)  # type: ignore[arg-type]


HEAD = (
    '<meta property="og:site_name" content="Harbour Times">'
    '<link rel="canonical" href="https://harbour.example/news/tram">'
    '<script type="application/ld+json">{"@context": "https://schema.org", "@type": "NewsArticle",'
    ' "headline": "Council approves tram extension", "datePublished": "2024-03-05T09:30:00+01:00"}'
    "</script>"
)


def test_article_text_metadata_and_identity() -> None:
    article = clean_page(fetched(article_page(head=HEAD).encode()))
    assert article.status is Reason.OK, article.detail
    assert "six kilometres" in article.text and "eleven thousand cars" in article.text
    assert "All rights reserved" not in article.text and "Home" not in article.text.split()
    assert article.title == "Council approves tram extension"
    assert article.published_at == datetime(2024, 3, 5, 8, 30, tzinfo=UTC)
    assert article.sitename == "Harbour Times"
    assert article.language == "en"
    assert article.canonical_url == "https://harbour.example/news/tram"
    assert article.article_id == url_id("https://harbour.example/news/tram")
    assert article.url == "https://www.harbour.example/news/tram?utm_source=x"
    assert article.content_hash == hashlib.sha256(article.text.encode()).hexdigest()
    assert article.source == "harbour"


def test_canonical_on_another_site_is_refused() -> None:
    head = '<link rel="canonical" href="https://spam.example/elsewhere">'
    article = clean_page(fetched(article_page(head=head).encode()))
    assert article.canonical_url == "https://www.harbour.example/news/tram"


def test_canonical_pointing_at_the_home_page_is_refused() -> None:
    head = '<link rel="canonical" href="https://www.harbour.example/">'
    article = clean_page(fetched(article_page(head=head).encode()))
    assert article.canonical_url == "https://www.harbour.example/news/tram"


def test_relative_og_url_on_same_site_is_accepted() -> None:
    head = '<meta property="og:url" content="/news/tram-extension">'
    article = clean_page(fetched(article_page(head=head).encode()))
    assert article.canonical_url == "https://www.harbour.example/news/tram-extension"


def test_lying_charset_is_decoded_right() -> None:
    paragraphs = [p + " Le café près de la gare ferme." for p in PARAGRAPHS]
    html = article_page(paragraphs=paragraphs, charset="iso-8859-1").encode("utf-8")
    article = clean_page(fetched(html, content_type="text/html; charset=iso-8859-1"))
    assert "Le café près de la gare" in article.text


def test_short_page_is_too_short_and_keeps_its_text() -> None:
    html = article_page(paragraphs=["Please enable JavaScript to read this article."])
    article = clean_page(fetched(html.encode()))
    assert article.status is Reason.TOO_SHORT
    assert "enable JavaScript" in article.text
    assert str(MIN_WORDS) in article.detail


@pytest.mark.parametrize(
    "html",
    [b"", b"<html><head><script>var x = 1;</script></head><body><script>go()</script></body>"
     b"</html>", b"\x00\x01\x02" * 50],
)
def test_pages_without_text_fail_with_a_reason(html: bytes) -> None:
    article = clean_page(fetched(html))
    assert article.status in (Reason.EXTRACTION_FAILED, Reason.TOO_SHORT)
    assert article.detail
    assert not article.ok


def test_feed_hints_fill_what_the_page_lacks() -> None:
    html = article_page(title="", paragraphs=PARAGRAPHS).replace("<h1>Council approves tram "
                                                                 "extension</h1>", "")
    page = fetched(html.encode(), title_hint="Tram from the feed",
                   published_hint=datetime(2024, 3, 5, 12, 0))
    article = clean_page(page)
    assert article.published_at == datetime(2024, 3, 5, 12, 0, tzinfo=UTC)
    assert article.title is not None


def test_failed_fetch_passes_through() -> None:
    page = fetched(b"", status=Reason.TIMEOUT, detail="read deadline 10 s", title_hint="Feed title")
    article = clean_page(page)
    assert (article.status, article.detail, article.title) == (
        Reason.TIMEOUT, "read deadline 10 s", "Feed title")
    assert article.text == "" and article.article_id == url_id(page.final_url)


def test_clean_html_offline_names_the_page_by_its_canonical_or_its_content() -> None:
    named = clean_html(article_page(head=HEAD).encode())
    assert named.url == named.canonical_url == "https://harbour.example/news/tram"
    assert named.article_id == url_id("https://harbour.example/news/tram")
    anonymous = clean_html(article_page().encode(), source="disk")
    assert anonymous.url == "" and anonymous.canonical_url == ""
    assert anonymous.article_id == anonymous.content_hash[:16]
    assert anonymous.status is Reason.OK and anonymous.source == "disk"


def test_clean_html_is_deterministic() -> None:
    html = article_page(head=HEAD).encode()
    assert clean_html(html) == clean_html(html)


@pytest.mark.parametrize(
    ("title", "sites", "expected"),
    [
        ("Council approves tram - Harbour Times", ("Harbour Times",), "Council approves tram"),
        ("Harbour Times | Council approves tram", ("Harbour Times",), "Council approves tram"),
        ("Council approves tram | harbour.example", ("harbour.example",), "Council approves tram"),
        ("Tram - Harbour Times", ("Harbour Times",), "Tram - Harbour Times"),  # nothing left
        ("Spider-Man returns - a review", ("Harbour Times",), "Spider-Man returns - a review"),
        ("Council approves tram", (), "Council approves tram"),
        (None, ("x",), None),
    ],
)
def test_clean_title(title: str | None, sites: tuple[str, ...], expected: str | None) -> None:
    assert clean_title(title, sites) == expected


def test_choose_title_skips_metadata_that_disagrees_with_the_title_element() -> None:
    candidates = ("constitutional monarchy in Oceania", "New Zealand")
    assert choose_title(candidates, "New Zealand - Wikipedia") == "New Zealand"
    assert choose_title((), "Only the title") == "Only the title"
    assert choose_title(("Headline",), None) == "Headline"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-05T09:30:00+01:00", datetime(2024, 3, 5, 8, 30, tzinfo=UTC)),
        ("2024-03-05T09:30:00.123Z", datetime(2024, 3, 5, 9, 30, tzinfo=UTC)),
        ("2024-03-05 09:30", datetime(2024, 3, 5, 9, 30, tzinfo=UTC)),
        ("2024-03-05T09:30:00-0500", datetime(2024, 3, 5, 14, 30, tzinfo=UTC)),
        ("2024-03-05", datetime(2024, 3, 5, tzinfo=UTC)),
        ("March 5, 2024", None),
        ("0001-01-01", None),
        ("", None),
    ],
)
def test_parse_datetime(value: str, expected: datetime | None) -> None:
    assert parse_datetime(value) == expected


def test_word_counting_and_normalisation() -> None:
    assert count_words("one two, three") == 3
    assert count_words("東京で会談") == 5  # CJK characters count one each
    assert normalize_text("a  b\r\n\n\n\nc\u00a0d ") == "a b\n\nc d"


@given(st.text())
def test_normalize_text_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


@given(st.text(min_size=1), st.lists(st.text(min_size=1), max_size=3))
def test_clean_title_only_ever_cuts(title: str, sites: list[str]) -> None:
    cleaned = clean_title(title, tuple(sites))
    if cleaned is not None:
        assert cleaned and cleaned in " ".join(unicodedata.normalize("NFKC", title).split())


@given(st.datetimes(min_value=datetime(1995, 1, 1), max_value=datetime(2090, 1, 1)),
       st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_parse_datetime_round_trips_iso_strings(moment: datetime, offset_min: int) -> None:
    aware = moment.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=offset_min)))
    parsed = parse_datetime(aware.isoformat())
    assert parsed is not None and parsed.tzinfo is UTC
    assert parsed == aware
