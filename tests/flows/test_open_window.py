"""The open window a run groups against: from the new documents' dates, less open_days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dedupe.records import Document
from flows.config import ConfigError, parse_settings
from flows.pipeline import open_since

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_window_starts_open_days_before_the_earliest_new_document() -> None:
    docs = [Document("a", "x", published_at=NOW - timedelta(days=400)),
            Document("b", "x", published_at=None)]
    assert open_since(docs, 30, NOW) == NOW - timedelta(days=430)
    assert open_since([Document("b", "x")], 30, NOW) == NOW - timedelta(days=30)


SOURCES = [{"name": "s", "feed": "https://example.org/rss.xml"}]


def test_open_days_is_checked_and_named() -> None:
    settings = parse_settings({"dedupe": {"open_days": 7}, "sources": SOURCES})
    assert settings.dedupe.open_days == 7.0
    with pytest.raises(ConfigError, match=r"\[dedupe\].open_days"):
        parse_settings({"dedupe": {"open_days": 0}, "sources": SOURCES})
    with pytest.raises(ConfigError, match=r"\[warehouse\].keep_days"):
        parse_settings({"warehouse": {"keep_days": "week"}, "sources": SOURCES})
