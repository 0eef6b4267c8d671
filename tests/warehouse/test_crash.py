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

import pytest

from warehouse import lake
from warehouse.queries import read_only, run_query
from warehouse.store import Warehouse

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
    """Whatever the kill left, the published snapshot is absent or complete: every run it
    lists is finished, and nothing of a run it does not list is in it."""
    if not lake.is_lake(path):
        return
    try:
        runs = run_query(path, "SELECT run_id, status FROM runs WHERE run_id IN"
                         " (SELECT run_id FROM published)").rows
    except Exception as exc:  # noqa: BLE001 - nothing published yet is the one allowed answer
        assert "no published run" in str(exc), exc
        return
    assert all(status == "completed" for _, status in runs), runs


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


def test_repeated_kills_at_any_moment_then_a_full_run(
    tmp_path: Path, loadscript: ModuleType, uninterrupted: dict
) -> None:
    path = tmp_path / "w.duckdb"
    # Steps the parametrized test does not cover, then moments spread over a load (about 1 s
    # of imports, then about 2 s of stages on 2 idle cores), all on one warehouse in turn:
    # each killed process replays the batches before its kill point, idempotently.
    for step in (
        "0:load_pages:written",       # inside the first transaction, before COMMIT
        "2:publish:snapshot",         # the run's stages committed, its marker not yet
        "0:load_grouping:written",
        "1:publish:committed",
    ):
        kill_at_step(path, step)
        assert_published_snapshot_is_whole(path)
    for moment in (1.3, 2.2):
        kill_after(path, moment)
        assert_published_snapshot_is_whole(path)
    loadscript.load(path, "rerun")
    assert state(path) == uninterrupted
    # Files of the killed commits are in no snapshot: maintenance deletes them.
    with Warehouse.open(path) as wh:
        report = wh.maintain(loadscript_t0(), keep_days=0)
    assert report["files_after"] <= report["files_before"]
    assert state(path) == uninterrupted
    ledger = run_query(path, "SELECT count(*) FROM run_stages WHERE run_id LIKE 'rerun-%'")
    assert ledger.rows == [(6,)]


def loadscript_t0() -> Any:
    return _loadscript().T0
