"""Local pages: a FIFO, a device or a symlink loop costs its own entry, never the run or the
rest of the directory (issue #21, items 1, 2 and 5)."""

from __future__ import annotations

import gzip
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from extract.fetch import Fetcher
from extract.local import NotRegularFile, open_regular
from extract.policy import FetchPolicy
from extract.records import Reason, Source, SourceKind
from extract.sources import discover
from flows.cli import main
from tests.extract.fetching import fetch_in_order as fetch_all
from tests.extract.hostile import article_html

POLICY = FetchPolicy(allow_private_networks=True)


def listed(source: Source) -> tuple[list[Any], list[Any]]:
    with Fetcher(POLICY) as fetcher:
        return discover(source, fetcher)


def finishes_within(seconds: float, fn: Callable[[], Any]) -> Any:
    """fn() on a thread, its value or exception; fails (instead of hanging the suite) if it
    has not returned in time."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the test's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "x.html"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile, match="FIFO"):
        finishes_within(5, lambda: open_regular(fifo))


def test_a_directory_source_skips_a_fifo_and_a_symlink_loop(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "a-pipe.html")
    (tmp_path / "b-loop.html").symlink_to(tmp_path / "b-loop.html")
    (tmp_path / "c-dangling.html").symlink_to(tmp_path / "nowhere.html")
    for n, name in enumerate(("d.html", "e.html", "z.html")):  # sorted after the bad ones
        (tmp_path / name).write_bytes(article_html(n))
    source = Source("disk", SourceKind.DIRECTORY, (str(tmp_path),))
    targets, failures = finishes_within(10, lambda: listed(source))
    assert [t.url.rsplit("/", 1)[-1] for t in targets] == ["d.html", "e.html", "z.html"]
    details = {f.url.rsplit("/", 1)[-1]: f.detail for f in failures}
    assert set(details) == {"a-pipe.html", "b-loop.html", "c-dangling.html"}
    assert "FIFO" in details["a-pipe.html"] and "move it out" in details["a-pipe.html"]
    assert "fix or remove it" in details["b-loop.html"]
    assert all(f.status is Reason.BAD_URL for f in failures)
    pages = fetch_all(targets, POLICY)
    assert [p.status for p in pages] == [Reason.OK] * 3


def test_a_fifo_swapped_in_after_discovery_fails_its_page(tmp_path: Path) -> None:
    page = tmp_path / "a.html"
    page.write_bytes(article_html(1))
    source = Source("disk", SourceKind.DIRECTORY, (str(tmp_path),))
    targets, _ = listed(source)
    page.unlink()
    os.mkfifo(page)
    [fetched] = finishes_within(10, lambda: fetch_all(targets, POLICY))
    assert fetched.status is Reason.BAD_URL and "not a regular file" in fetched.detail


def test_extract_caps_a_page_and_a_gzip_bomb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "bomb.html.gz").write_bytes(gzip.compress(b" " * (8 * 1024 * 1024)))
    (pages / "big.html").write_bytes(b"<p>" + b"x" * (3 * 1024 * 1024))
    (pages / "ok.html").write_bytes(article_html(1))
    os.mkfifo(pages / "pipe.html")
    out = tmp_path / "out.jsonl"
    args = ["extract", str(pages), "--out", str(out), "--max-bytes", str(2 * 1024 * 1024),
            "--workers", "1"]
    assert finishes_within(120, lambda: main(args)) == 0
    rows = {Path(str(r["file"])).name: r["status"] for r in map(json.loads, out.open())}
    assert rows == {"big.html": "too_large", "bomb.html.gz": "too_large", "ok.html": "ok",
                    "pipe.html": "extraction_failed"}
    err = capsys.readouterr().err  # each failed file named with why, the rows keep their keys
    assert "pipe.html: extraction_failed: NotRegularFile" in err and "FIFO" in err
    assert "big.html: too_large: over --max-bytes 2097152 (gunzipped); raise it" in err


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--workers", "1000", "workers must be 1 to"),
    ("--workers", "0", "workers must be 1 to"),
    ("--timeout", "nan", "positive number of seconds"),
    ("--timeout", "inf", "positive number of seconds"),
    ("--max-bytes", "0", "positive whole number of bytes"),
])
def test_extract_refuses_limits_it_cannot_keep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, says: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["extract", str(tmp_path), "--out", str(tmp_path / "o.jsonl"), flag, value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
