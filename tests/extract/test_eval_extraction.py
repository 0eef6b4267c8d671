"""Extraction scoring: the measures themselves, and `newsdedup eval extraction` on tiny sets."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from extract.evaluate import bow_f1, date_matches, title_matches, tokens
from flows.cli import main

BODY = ("The harbour council approved a tram extension with four new stations, six kilometres "
        "of track and a budget of two hundred million euros on Tuesday evening. ") * 3


def test_bow_f1() -> None:
    assert bow_f1("a b c", "a b c") == 1.0
    assert bow_f1("a b c", "") == 0.0
    assert bow_f1("", "") == 1.0
    assert bow_f1("a a b", "a b") == pytest.approx(2 * 1.0 * (2 / 3) / (1 + 2 / 3))
    assert tokens("Hello, World! l'été") == ["hello", "world", "l", "été"]


@pytest.mark.parametrize(
    ("pred", "gold", "lenient", "strict"),
    [
        ("Mozilla", "Mozilla - Wikipedia", True, False),
        ("Tram approved - Harbour Times", "Tram approved", True, False),
        ("tram  APPROVED!", "Tram approved", True, True),
        ("Something else", "Tram approved", False, False),
        (None, "Tram approved", False, False),
    ],
)
def test_title_matches(pred: str | None, gold: str, lenient: bool, strict: bool) -> None:
    assert title_matches(pred, gold) is lenient
    assert title_matches(pred, gold, strict=True) is strict


def test_date_matches_the_written_day_or_the_utc_day() -> None:
    late = datetime(2018, 6, 12, 23, 0, tzinfo=UTC)
    assert date_matches(late, "2018-06-12T23:00:00.000Z")
    assert date_matches(datetime(2018, 6, 13, 3, tzinfo=UTC), "2018-06-12T23:00:00-04:00")
    assert date_matches(datetime(2018, 6, 12, tzinfo=UTC), "2018-06-12")
    assert not date_matches(None, "2018-06-12")
    assert not date_matches(late, "2018-06-14")


def page(title: str, date: str = "2024-05-01T10:00:00Z") -> bytes:
    return (f"<html><head><title>{title}</title><meta property='article:published_time' "
            f"content='{date}'></head><body><article><h1>{title}</h1><p>{BODY}</p></article>"
            "</body></html>").encode()


def test_eval_command_prints_one_line_per_set(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    gold = tmp_path / "news_gold"
    (gold / "html").mkdir(parents=True)
    truth = {}
    for n in range(2):
        (gold / "html" / f"p{n}.html.gz").write_bytes(gzip.compress(page(f"Tram story {n}")))
        truth[f"p{n}"] = {"articleBody": BODY, "url": f"https://news.example/{n}",
                          "headline": f"Tram story {n}", "datePublished": "2024-05-01"}
    (gold / "ground-truth.json").write_text(json.dumps(truth))
    case = tmp_path / "readability_like" / "case-1"
    case.mkdir(parents=True)
    (case / "source.html").write_bytes(page("Readable story"))
    (case / "expected.html").write_text(f"<div><p>{BODY}</p></div>")
    (case / "expected-metadata.json").write_text(json.dumps(
        {"title": "Readable story", "publishedTime": "2024-05-01T10:00:00Z"}))

    assert main(["eval", "extraction", "--data", str(tmp_path), "--workers", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("news_gold: 2 pages; BoW F1 title+text 0.9")
    assert "title 2/2 = 100.0%" in lines[0] and "date 2/2 = 100.0%" in lines[0]
    assert lines[1].startswith("readability_like: 1 pages; BoW F1")
    assert "title 1/1" in lines[1] and "date 1/1" in lines[1]


def test_eval_command_without_data(tmp_path: Path) -> None:
    assert main(["eval", "extraction", "--data", str(tmp_path / "absent")]) == 2
