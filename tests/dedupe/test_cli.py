from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.cli import main
from tests.dedupe.stories import story_text

ECBPLUS = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "eval" / "events" / "ecbplus_dev.jsonl"
)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_cluster_writes_one_line_per_input_in_order(tmp_path: Path) -> None:
    rows = [
        {"id": "b", "text": story_text(1, 0), "published_at": "2024-05-01T10:00:00Z", "x": 1},
        {"id": "a", "text": story_text(1, 1), "title": "Story one", "url": "https://e.com/a"},
        {"id": "c", "text": story_text(2, 0), "published_at": None},
        {"id": "d", "text": story_text(1, 0)},  # a copy of b
        {"id": "s", "text": "tiny"},
    ]
    out = tmp_path / "out.jsonl"
    assert main(["cluster", str(write_jsonl(tmp_path / "in.jsonl", rows)), "--out", str(out)]) == 0
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["id"] for g in got] == ["b", "a", "c", "d", "s"]
    assert all(set(g) == {"id", "event_id", "copy_id"} for g in got)
    by = {g["id"]: g for g in got}
    assert by["a"]["event_id"] == by["b"]["event_id"] == by["d"]["event_id"]
    assert by["c"]["event_id"] != by["a"]["event_id"]
    assert by["b"]["copy_id"] == by["d"]["copy_id"] != by["a"]["copy_id"]
    assert by["s"]["event_id"] is None and by["s"]["copy_id"] is None


def test_cluster_rejects_bad_dates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "x", "published_at": "soon"}])
    assert main(["cluster", str(path), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "ISO 8601" in capsys.readouterr().err


def test_eval_clustering_prints_both_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"id": f"{s}{v}", "text": story_text(s, v), "event": f"e{s}", "topic": s}
        for s in (1, 2)
        for v in range(3)
    ]
    path = write_jsonl(tmp_path / "gold.jsonl", rows)
    assert main(["eval", "clustering", str(path), "--by-halves", "topic"]) == 0
    out = capsys.readouterr().out
    assert "B-cubed P 1.000 R 1.000 F1 1.000" in out
    assert "pairwise P 1.000 R 1.000 F1 1.000" in out
    assert "topic odd" in out
    assert main(["eval", "clustering", str(path), "--sweep", "--thresholds", "0.1,0.5"]) == 0
    assert "join 0.500" in capsys.readouterr().out


@pytest.mark.skipif(not ECBPLUS.is_file(), reason="../shared/eval/events is not present")
def test_ecbplus_dev_through_the_cluster_command(tmp_path: Path) -> None:
    from dedupe.evaluate import bcubed

    out = tmp_path / "out.jsonl"
    assert main(["cluster", str(ECBPLUS), "--out", str(out)]) == 0
    gold = {r["id"]: r["event"] for r in map(json.loads, ECBPLUS.read_text().splitlines())}
    pred = {r["id"]: r["event_id"] for r in map(json.loads, out.read_text().splitlines())}
    assert bcubed(gold, pred).f1 >= 0.92
