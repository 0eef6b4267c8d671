"""`newsdedup extract PATH... --out FILE.jsonl`: the output format is a contract, tested exactly."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from flows.cli import main
from flows.commands.extract import ROW_KEYS

BODY = " ".join(
    f"Paragraph {n}: the harbour council approved a tram extension with four new stations, "
    "six kilometres of track and a budget of two hundred million euros."
    for n in range(4)
)


def html(title: str, body: str = BODY, head: str = "") -> bytes:
    return (f"<html lang='en'><head><title>{title}</title>{head}</head><body><article>"
            f"<h1>{title}</h1><p>{body}</p></article></body></html>").encode()


@pytest.fixture()
def pages(tmp_path: Path) -> Path:
    root = tmp_path / "pages"
    (root / "b").mkdir(parents=True)
    head = ('<link rel="canonical" href="https://news.example/a">'
            '<meta property="article:published_time" content="2024-05-01T10:00:00+02:00">'
            '<meta name="author" content="Ann Writer">')
    (root / "a.html").write_bytes(html("Tram approved", head=head))
    (root / "b" / "c.htm").write_bytes(html("Short", body="Enable JavaScript."))
    (root / "b" / "d.html.gz").write_bytes(gzip.compress(html("Zipped story")))
    (root / "notes.txt").write_text("not a page")
    return root


def read_rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_directory_is_walked_and_each_file_is_one_exact_row(pages: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    assert main(["extract", str(pages), "--out", str(out), "--workers", "2"]) == 0
    rows = read_rows(out)
    assert [r["file"] for r in rows] == [
        str(pages / "a.html"), str(pages / "b" / "c.htm"), str(pages / "b" / "d.html.gz")]
    assert all(list(r) == list(ROW_KEYS) for r in rows)
    assert ROW_KEYS == ("file", "url", "title", "author", "published_at", "sitename",
                        "language", "text", "status")
    first = rows[0]
    assert first["url"] == "https://news.example/a"
    assert first["title"] == "Tram approved"
    assert first["author"] == "Ann Writer"
    assert first["published_at"] == "2024-05-01T08:00:00+00:00"
    assert first["language"] == "en"
    assert first["status"] == "ok" and "four new stations" in str(first["text"])
    assert rows[1]["status"] == "too_short" and rows[1]["text"]
    assert rows[2]["status"] == "ok" and rows[2]["url"] is None
    assert rows[2]["title"] == "Zipped story"


def test_files_given_by_name_keep_their_order_and_spelling(pages: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(pages)
    out = tmp_path / "out.jsonl"
    assert main(["extract", "b/d.html.gz", "a.html", "--out", str(out)]) == 0
    assert [r["file"] for r in read_rows(out)] == ["b/d.html.gz", "a.html"]


def test_broken_gzip_is_a_row_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html.gz"
    bad.write_bytes(b"not gzip at all")
    out = tmp_path / "out.jsonl"
    assert main(["extract", str(bad), "--out", str(out), "--workers", "1"]) == 0
    (row,) = read_rows(out)
    assert row["status"] == "extraction_failed" and row["file"] == str(bad)
    assert list(row) == list(ROW_KEYS)


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    assert main(["extract", str(tmp_path / "nope"), "--out", str(tmp_path / "o.jsonl")]) == 2
