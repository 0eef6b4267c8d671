"""`newsdedup query`: one statement, streamed rows, a row limit and a time limit, and every
failure a sentence on stderr (issue #21, items 8, 10 and 11)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.cli import main
from warehouse.queries import QueryError, QueryTimeout, run_query
from warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[2]
FIVE = "SELECT range AS n FROM range(5)"
FIVE_SORTED = FIVE + " ORDER BY n"
NONE = FIVE + " WHERE range < 0"


@pytest.fixture()
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "w.lake"
    with Warehouse.open(path):
        pass
    return path


def query(warehouse: Path, *args: str) -> list[str]:
    return ["query", "--warehouse", str(warehouse), *args]


def test_json_is_one_array_and_jsonl_a_row_a_line(
    warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(query(warehouse, FIVE_SORTED, "--format", "json")) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": n} for n in range(5)]
    assert main(query(warehouse, FIVE_SORTED, "--format", "jsonl")) == 0
    assert [json.loads(x) for x in capsys.readouterr().out.splitlines()] == [
        {"n": n} for n in range(5)]
    assert main(query(warehouse, NONE, "--format", "json")) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_one_statement_only(warehouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(query(warehouse, "SELECT 1; SELECT 2")) == 2
    assert "one statement at a time: found 2" in capsys.readouterr().err
    assert main(query(warehouse, ";")) == 2
    err = capsys.readouterr().err
    assert "no SQL statement" in err and "Traceback" not in err
    with pytest.raises(QueryError):
        run_query(warehouse, "SELECT 1; SELECT 2")


def test_the_limit_stops_reading_and_says_so(
    warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 300 million rows: read whole, this needed gigabytes; streamed, the first 1,000 come at once.
    t0 = time.monotonic()
    assert main(query(warehouse, "SELECT * FROM range(300000000)", "--format", "csv")) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 + 1000
    assert "first 1000 rows; --limit 0 shows all" in captured.err
    assert time.monotonic() - t0 < 20
    assert main(query(warehouse, FIVE, "--limit", "0", "--format", "jsonl")) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 5 and captured.err == ""
    result = run_query(warehouse, FIVE, limit=2)
    assert len(result.rows) == 2 and result.truncated
    assert not run_query(warehouse, FIVE, limit=5).truncated


def test_a_query_past_its_time_limit_is_stopped(
    warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = "SELECT sum(hash(range)) FROM range(1000000000000)"
    t0 = time.monotonic()
    assert main(query(warehouse, slow, "--timeout", "0.5")) == 2
    assert time.monotonic() - t0 < 10
    err = capsys.readouterr().err
    assert "longer than 0.5 s" in err and "--timeout" in err
    with pytest.raises(QueryTimeout):
        run_query(warehouse, slow, timeout_s=0.2)


@pytest.mark.parametrize("value", ["nan", "-1", "inf"])
def test_a_bad_timeout_is_refused(
    warehouse: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit):
        main(query(warehouse, "SELECT 1", "--timeout", value))
    assert "--timeout" in capsys.readouterr().err


def run_cli(args: list[str], **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "flows.cli", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)  # type: ignore[call-overload]


def test_a_closed_pipe_ends_quietly(warehouse: Path) -> None:
    proc = run_cli(query(warehouse, "SELECT * FROM range(100000000)", "--limit", "0",
                          "--format", "csv"))
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_ctrl_c_during_a_query_is_one_line(warehouse: Path) -> None:
    slow = "SELECT sum(hash(range)) FROM range(1000000000000)"  # count(*) would be folded
    proc = run_cli(query(warehouse, slow, "--timeout", "0"))
    time.sleep(2.0)  # imported and querying
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=90)  # seconds on a quiet machine; CI may be loaded
    assert proc.returncode in (2, 130), err
    assert "Traceback" not in err and "interrupted" in err


def test_ctrl_c_while_the_warehouse_opens_is_one_line_too(warehouse: Path) -> None:
    # A Ctrl-C that lands in one of DuckDB's statements while the lake is being attached became
    # "RuntimeError: Query interrupted" with a traceback, or was lost and the query ran on. At
    # these delays the process is importing, attaching or querying, depending on the machine.
    slow = "SELECT sum(hash(range)) FROM range(1000000000000)"
    for delay in (0.8, 1.1, 1.4, 1.7):
        proc = run_cli(query(warehouse, slow, "--timeout", "0"))
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=90)
        finally:
            proc.kill()
        assert proc.returncode in (2, 130), (delay, err)
        assert "Traceback" not in err, (delay, err)


def test_a_busy_or_directory_warehouse_is_a_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(query(tmp_path, "SELECT 1")) == 2
    err = capsys.readouterr().err
    assert "is not a newsdedup warehouse" in err and "Traceback" not in err
