"""Killing a load (SIGKILL, at exact steps and at arbitrary moments) loses and duplicates nothing:
the next run ends with the same warehouse as an uninterrupted one."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest

from warehouse.queries import read_only, run_query
from warehouse.store import Warehouse, writer_path

SCRIPT = Path(__file__).with_name("loadscript.py")
REPO = Path(__file__).resolve().parents[2]

# Columns that say when or in which run a row was written differ between any two runs; the
# comparison is on everything else.
COMPARED: dict[str, str] = {
    "articles": "SELECT * EXCLUDE (first_seen_at, first_run_id) FROM articles",
    "events": "SELECT * EXCLUDE (first_seen_at, last_seen_at, last_run_id) FROM events",
    "event_articles": "SELECT * EXCLUDE (first_seen_at, run_id) FROM event_articles",
    "event_aliases": "SELECT alias_id, event_id FROM event_aliases",
    "dedupe_state": "SELECT doc_id, event_id, copy_id, payload FROM dedupe_state",
    "url_state": "SELECT * FROM url_state",
}


def _loadscript() -> ModuleType:
    spec = importlib.util.spec_from_file_location("loadscript", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def state(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with read_only(path) as con:
        return {t: sorted(con.execute(q).fetchall(), key=repr) for t, q in COMPARED.items()}


@pytest.fixture(scope="module")
def loadscript() -> ModuleType:
    return _loadscript()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, loadscript: ModuleType) -> dict:
    path = tmp_path_factory.mktemp("clean") / "w.duckdb"
    loadscript.load(path, "clean")
    result = state(path)
    assert len(result["articles"]) == 3 * loadscript.N_PER_BATCH
    assert result["event_aliases"], "the fixture must exercise merges"
    return result


def _env(kill_at: str = "") -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env["NEWSDEDUP_TEST_KILL_AT"] = kill_at
    return env


def kill_at_step(path: Path, step: str) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "load", str(path), "killed"],
                          env=_env(step), capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, (step, proc.returncode, proc.stderr[-2000:])


def kill_after(path: Path, seconds: float) -> None:
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "load", str(path), "killed"],
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)


def assert_published_snapshot_is_whole(path: Path) -> None:
    """Whatever the kill left, the published file is absent or a complete database."""
    if path.exists():
        run_query(path, "SELECT count(*) FROM articles, (SELECT count(*) FROM events)")


@pytest.mark.parametrize(
    "step",
    [
        "1:load_pages:committed",     # between stages: pages in, not grouped yet
        "2:load_grouping:written",    # inside the merging batch's transaction, before COMMIT
    ],
)
def test_a_load_killed_at_a_step_is_completed_by_the_next_run(
    tmp_path: Path, step: str, loadscript: ModuleType, uninterrupted: dict
) -> None:
    path = tmp_path / "w.duckdb"
    kill_at_step(path, step)
    assert_published_snapshot_is_whole(path)
    loadscript.load(path, "rerun")
    assert state(path) == uninterrupted
    assert not list(tmp_path.glob(".*tmp")), "temporary copies of the killed run are cleared"


def test_repeated_kills_at_any_moment_then_a_full_run(
    tmp_path: Path, loadscript: ModuleType, uninterrupted: dict
) -> None:
    path = tmp_path / "w.duckdb"
    # Steps the parametrized test does not cover, then moments spread over a load (about 1 s
    # of imports, then about 2 s of stages on 2 idle cores), all on one warehouse in turn:
    # each killed process replays the batches before its kill point, idempotently.
    for step in (
        "0:load_pages:written",       # inside the first transaction, before COMMIT
        "2:publish:copied",           # the snapshot copied, not yet renamed into place
        "0:load_grouping:written",
        "1:publish:checkpointed",
    ):
        kill_at_step(path, step)
        assert_published_snapshot_is_whole(path)
    for moment in (1.3, 2.2):
        kill_after(path, moment)
        assert_published_snapshot_is_whole(path)
    loadscript.load(path, "rerun")
    assert state(path) == uninterrupted
    assert not list(tmp_path.glob(".*tmp")), "temporary copies of the killed runs are cleared"
    ledger = run_query(path, "SELECT count(*) FROM run_stages WHERE run_id LIKE 'rerun-%'")
    assert ledger.rows == [(6,)]


def test_a_wal_that_does_not_match_the_writer_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE x (a INTEGER)")
    # Keep the change in the WAL: no checkpoint on close, so other.duckdb.wal survives.
    con.execute("SET checkpoint_threshold = '1GB'")
    con.execute("PRAGMA disable_checkpoint_on_shutdown")
    con.execute("INSERT INTO x SELECT range FROM range(1000)")
    con.close()
    foreign_wal = other.with_name(other.name + ".wal")
    assert foreign_wal.exists()
    with Warehouse.open(path):
        pass
    wal = writer_path(path).with_name(writer_path(path).name + ".wal")
    foreign_wal.replace(wal)
    with Warehouse.open(path) as wh:
        wh.start_run("r1", loadscript_t0(), None)
    assert list(tmp_path.glob("w.duckdb.writer.wal.stale-*"))
    assert run_query(path, "SELECT run_id FROM runs").rows == [("r1",)]


def test_a_writer_wal_without_its_writer_file_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Warehouse.open(path) as wh:
        wh.start_run("r1", loadscript_t0(), None)
    writer_path(path).unlink()
    writer_path(path).with_name(writer_path(path).name + ".wal").write_bytes(b"\0" * 4096)
    with Warehouse.open(path) as wh:  # starts again from the published snapshot
        wh.start_run("r2", loadscript_t0(), None)
    assert run_query(path, "SELECT run_id FROM runs ORDER BY 1").rows == [("r1",), ("r2",)]


def loadscript_t0() -> Any:
    return _loadscript().T0
