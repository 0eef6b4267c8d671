"""Where an article's date came from (`Article.date_source`), on small saved pages in
tests/extract/pages/dates/: one page per place a publisher states a date, one whose only date is
in its text, one with none."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from extract.clean import clean_html, clean_page, parse_day, parse_url_day
from extract.records import DateSource, FetchedPage, Reason

PAGES = Path(__file__).parent / "pages" / "dates"
PLAIN_URL = "https://harbour.example/news/tram-extension"
DATED_URL = "https://harbour.example/2025/01/07/tram-extension"


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "url", "source", "published"),
    [
        # Read by read_meta itself, to the second.
        ("meta.html", PLAIN_URL, DateSource.META, datetime(2025, 1, 7, 8, 30, tzinfo=UTC)),
        ("jsonld.html", PLAIN_URL, DateSource.JSONLD, datetime(2025, 1, 7, 8, 30, tzinfo=UTC)),
        ("time.html", PLAIN_URL, DateSource.TIME, datetime(2025, 1, 7, 8, 30, tzinfo=UTC)),
        # Found by htmldate (the day as the page writes it, 23:30 at -05:00), and recognised as
        # the day a structured field states.
        ("meta-htmldate.html", PLAIN_URL, DateSource.META, datetime(2025, 1, 7, tzinfo=UTC)),
        ("time-htmldate.html", PLAIN_URL, DateSource.TIME, datetime(2025, 1, 7, tzinfo=UTC)),
        # Not valid JSON, as on real pages: read by pattern, as htmldate reads it.
        ("jsonld-invalid.html", PLAIN_URL, DateSource.JSONLD, datetime(2025, 1, 7, tzinfo=UTC)),
        ("no-date.html", DATED_URL, DateSource.URL, datetime(2025, 1, 7, tzinfo=UTC)),
        # "first proposed in 2003": htmldate's guess is kept, and flagged.
        ("text.html", PLAIN_URL, DateSource.TEXT, datetime(2003, 1, 1, tzinfo=UTC)),
        ("no-date.html", PLAIN_URL, None, None),
    ],
)
def test_date_source(
    name: str, url: str, source: DateSource | None, published: datetime | None
) -> None:
    article = clean_html(page(name), url)
    assert article.status is Reason.OK
    assert (article.date_source, article.published_at) == (source, published)


def test_date_sources_are_stored_as_their_names() -> None:
    assert [str(s) for s in DateSource] == ["meta", "jsonld", "time", "url", "text", "feed"]
    assert clean_html(page("text.html"), PLAIN_URL).date_source == "text"


def fetched(html: bytes, hint: datetime | None) -> FetchedPage:
    return FetchedPage(url=PLAIN_URL, final_url=PLAIN_URL, source="harbour", status=Reason.OK,
                       fetched_at=datetime(2025, 1, 8, tzinfo=UTC), body=html,
                       published_hint=hint)


def test_a_feed_date_replaces_a_guess_but_not_a_stated_date() -> None:
    hint = datetime(2025, 1, 7, 12, 0)  # no zone: taken as UTC
    guessed = clean_page(fetched(page("text.html"), hint))
    assert (guessed.date_source, guessed.published_at) == (
        DateSource.FEED, datetime(2025, 1, 7, 12, 0, tzinfo=UTC))
    undated = clean_page(fetched(page("no-date.html"), hint))
    assert undated.date_source is DateSource.FEED
    stated = clean_page(fetched(page("meta.html"), hint))
    assert (stated.date_source, stated.published_at) == (
        DateSource.META, datetime(2025, 1, 7, 8, 30, tzinfo=UTC))
    assert clean_page(fetched(page("text.html"), None)).date_source is DateSource.TEXT


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-01-07T23:30:00-05:00", date(2025, 1, 7)),  # as written, not 2025-01-08 UTC
        ("2025/1/7", date(2025, 1, 7)),
        ("Tue, 07 Jan 2025 10:00:00 GMT", date(2025, 1, 7)),
        ("2025-13-07", None),
        ("yesterday", None),
        ("", None),
    ],
)
def test_parse_day(value: str, expected: date | None) -> None:
    assert parse_day(value) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://harbour.example/2025/01/07/tram", date(2025, 1, 7)),
        ("https://harbour.example/news/tram-2025-01-07.html", date(2025, 1, 7)),
        ("https://harbour.example/2025/01/tram", None),  # a month is not a day
        ("https://harbour.example/news/20250107", None),
        ("https://harbour.example/2025/13/45/tram", None),
        (None, None),
    ],
)
def test_parse_url_day(url: str | None, expected: date | None) -> None:
    assert parse_url_day(url) == expected
