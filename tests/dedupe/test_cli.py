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


@pytest.mark.parametrize("second_id", ["a", 1, "1"])
def test_cluster_refuses_an_id_given_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], second_id: object
) -> None:
    first_id = "a" if second_id == "a" else (1 if second_id == "1" else "1")
    rows = [{"id": first_id, "text": story_text(1, 0)}, {"id": second_id, "text": story_text(2, 0)}]
    out = tmp_path / "o.jsonl"
    assert main(["cluster", str(write_jsonl(tmp_path / "in.jsonl", rows)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "already used on line 1" in err and "own id" in err
    assert not out.exists()


def test_cluster_refuses_to_overwrite_its_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": story_text(1, 0)}])
    before = path.read_bytes()
    assert main(["cluster", str(path), "--out", str(tmp_path / "." / "in.jsonl")]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_an_unwritable_out_fails_before_any_grouping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.commands.cluster as cluster

    def no_grouping(docs: object) -> None:
        raise AssertionError("grouped before checking --out")

    monkeypatch.setattr(cluster, "group_in_runs", no_grouping)
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": story_text(1, 0)}])
    for out in (tmp_path / "missing" / "o.jsonl", tmp_path):
        assert main(["cluster", str(path), "--out", str(out)]) == 2
        assert "--out" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


@pytest.mark.parametrize("content, says", [
    (b'{"id": "a", "text": "caf\xe9"}\n', "not UTF-8"),
    (b'{"id": "a", "text": "half \\ud800 a pair"}\n', "surrogate"),
])
def test_cluster_names_bad_text_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, says: str
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(content)
    assert main(["cluster", str(path), "--out", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_extract_output_feeds_cluster(tmp_path: Path) -> None:
    rows = [{"file": f"pages/{n}.html", "url": None, "text": story_text(1, n), "status": "ok"}
            for n in range(2)]
    out = tmp_path / "o.jsonl"
    assert main(["cluster", str(write_jsonl(tmp_path / "x.jsonl", rows)), "--out", str(out)]) == 0
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["id"] for g in got] == ["pages/0.html", "pages/1.html"]
    assert got[0]["event_id"] == got[1]["event_id"]
