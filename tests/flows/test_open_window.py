"""The open window a run groups against: from the new documents' dates, less open_days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dedupe.records import Document
from dedupe.window import window_start
from flows.config import ConfigError, parse_settings

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def doc(i: int, when: datetime | None, guessed: bool = False) -> Document:
    return Document(f"d{i}", "x", published_at=when, date_guessed=guessed)


def test_the_window_starts_open_days_before_the_earliest_new_document() -> None:
    # A replayed stream: dates a year old, not the clock, decide.
    old = NOW - 400 * DAY
    assert window_start([doc(0, old), doc(1, old + DAY)], 30, NOW) == old - 30 * DAY
    assert window_start([doc(0, None)], 30, NOW) == NOW - 30 * DAY
    assert window_start([], 30, NOW) == NOW - 30 * DAY


def test_a_stray_or_guessed_date_does_not_open_the_history() -> None:
    run = [doc(i, NOW - i * DAY) for i in range(5)]
    expected = NOW - 4 * DAY - 30 * DAY
    assert window_start([*run, doc(9, NOW - 3000 * DAY)], 30, NOW) == expected  # a late report
    assert window_start([*run, doc(9, NOW - 300 * DAY, guessed=True)], 30, NOW) == expected


SOURCES = [{"name": "s", "feed": "https://example.org/rss.xml"}]


def test_open_days_is_checked_and_named() -> None:
    settings = parse_settings({"dedupe": {"open_days": 7}, "sources": SOURCES})
    assert settings.dedupe.open_days == 7.0
    with pytest.raises(ConfigError, match=r"\[dedupe\].open_days"):
        parse_settings({"dedupe": {"open_days": 0}, "sources": SOURCES})
    with pytest.raises(ConfigError, match=r"\[warehouse\].keep_days"):
        parse_settings({"warehouse": {"keep_days": "week"}, "sources": SOURCES})
