"""Orchestration: the pieces without Prefect (reporting, batching, retry rules, timeouts), then
the acceptance test against a real `prefect server start` on 127.0.0.1."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect.states import Completed, Failed

from dedupe.records import Event
from extract.policy import FetchPolicy
from flows import reporting, scaleout
from flows.pipeline import STAGES
from flows.tasks import fetch_timeout_s, is_transient, retry_if_transient
from tests.flows.prefectserver import PrefectServer, write_config
from warehouse.errors import WarehouseBusy, WarehouseCorrupt
from warehouse.queries import read_only
from warehouse.store import RunCounts


def _event(event_id: str, n: int, date: str | None = "2025-01-07") -> Event:
    return Event(
        event_id=event_id, title=f"title {event_id}", canonical_doc_id="d", canonical_rule="r",
        member_ids=tuple(f"d{i}" for i in range(n)), n_sources=n,
        first_published_at=datetime(2025, 1, 7, tzinfo=UTC), event_date=date,
    )


def test_event_rows_put_new_events_first_and_largest_first() -> None:
    rows = reporting.event_rows(
        [_event("a", 1), _event("b", 3), _event("c", 2, None)], new_ids=frozenset({"a", "c"})
    )
    assert [(r.event_id, r.status) for r in rows] == [("c", "new"), ("a", "new"), ("b", "updated")]
    assert rows[0].date == "2025-01-07"  # no agreed date: the first publication's


def test_summary_markdown_names_failures_copies_events_and_stage_times() -> None:
    counts = RunCounts(n_targets=5, n_fetched=3, n_failed=2, n_copies=1, n_events_new=1,
                       failures={"timeout": 1, "robots": 1})
    rows = reporting.event_rows([_event("a", 2)], frozenset({"a"}))
    text = reporting.summary_markdown(
        "run-1", counts, {"slow.example": 1, "strict.example": 1}, rows,
        {"fetch": 1.5, "prefect": 0.25}, "/tmp/w.duckdb",
    )
    for needle in ("| fetched | 3 |", "| timeout | 1 |", "| slow.example | 1 |",
                   "| new articles sharing their text with another (copies) | 1 |", "**title a**",
                   "| prefect | 0.25 |"):
        assert needle in text


def test_events_table_is_capped() -> None:
    rows = reporting.event_rows(
        [_event(f"e{i}", 1) for i in range(reporting.MAX_TABLE_ROWS + 5)], frozenset()
    )
    assert len(reporting.events_table(rows)) == reporting.MAX_TABLE_ROWS


def test_new_events_past_the_limit_are_announced_in_one_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[dict] = []
    monkeypatch.setattr(reporting, "emit_event", lambda **kw: sent.append(kw))
    rows = reporting.event_rows(
        [_event(f"e{i}", i + 1) for i in range(5)] + [_event("old", 9)],
        frozenset(f"e{i}" for i in range(5)),
    )
    assert reporting.emit_new_events(rows, "run-1", limit=2) == 3
    assert [e["event"] for e in sent] == [reporting.EVENT_CREATED] * 2 + [reporting.EVENTS_CREATED]
    assert [e["payload"]["event_id"] for e in sent[:2]] == ["e4", "e3"]  # the largest new ones
    assert sent[2]["payload"] == {"run_id": "run-1", "new_events": 5, "announced": 2,
                                  "not_announced": 3}
    sent.clear()
    assert reporting.emit_new_events(rows, "run-1", limit=5) == 5
    assert all(e["event"] == reporting.EVENT_CREATED for e in sent)


def test_batches_keep_order_and_bound_the_task_count() -> None:
    assert scaleout.batches(list(range(5)), size=2) == [[0, 1], [2, 3], [4]]
    many = scaleout.batches(list(range(100_000)))
    assert len(many) == scaleout.MAX_BATCHES and sum(map(len, many)) == 100_000
    assert scaleout.batches([]) == []
    with pytest.raises(ValueError, match="at least 1"):
        scaleout.batches([1], size=0)


def test_only_transient_errors_are_retried() -> None:
    assert is_transient(WarehouseBusy("held"))
    assert is_transient(ConnectionResetError())
    assert not is_transient(WarehouseCorrupt("bad file"))
    assert not is_transient(ValueError("a bug"))
    redis = pytest.importorskip("redis", reason="the redis client: pip install -e '.[redis]'")
    assert is_transient(redis.exceptions.ConnectionError("refused"))
    assert not is_transient(redis.exceptions.ResponseError("WRONGTYPE"))
    from prefect.task_engine import TaskRunTimeoutError

    assert not is_transient(TaskRunTimeoutError("backstop"))


def test_retry_condition_reads_the_failed_state() -> None:
    assert retry_if_transient(None, None, Failed(data=WarehouseBusy("held")))  # type: ignore[arg-type]
    assert not retry_if_transient(None, None, Failed(data=KeyError("x")))  # type: ignore[arg-type]
    assert not retry_if_transient(None, None, Completed(data=1))  # type: ignore[arg-type]


def test_timeout_backstops_follow_the_settings() -> None:
    policy = FetchPolicy()  # 30 s a request, 1 retry, 1 s per host, 2 per host at once
    assert fetch_timeout_s(10, policy) == pytest.approx(10 * 61 / 2 + 120)


def test_redis_storage_config_from_url() -> None:
    from flows.config import DedupeSettings

    assert scaleout.redis_storage_config(DedupeSettings(), "x") is None
    cfg = scaleout.redis_storage_config(
        DedupeSettings(lsh_storage="redis", redis_url="redis://127.0.0.1:6390/2"), "nd:run"
    )
    assert cfg == {"type": "redis", "redis": {"host": "127.0.0.1", "port": 6390, "db": 2},
                   "basename": b"nd:run"}


# -- against a real Prefect server ------------------------------------------------------------


@pytest.mark.slow
def test_run_is_a_completed_flow_run_with_tasks_and_artifacts(
    prefect_server: PrefectServer, sample_site: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, sample_site)
    t0 = time.monotonic()
    done = prefect_server.cli("run", "--config", str(config))
    wall = time.monotonic() - t0
    assert done.returncode == 0, done.stderr[-3000:]
    seconds_line = next(line for line in done.stdout.splitlines() if "seconds:" in line)
    print(f"newsdedup run: {wall:.1f} s wall in a fresh process; {seconds_line.strip()}")

    runs = [r for r in prefect_server.flow_runs()
            if r["parameters"].get("config_path") == str(config)]
    assert len(runs) == 1
    run = runs[0]
    assert run["state"]["type"] == "COMPLETED"

    names = {t["name"] for t in prefect_server.task_runs(run["id"])}
    assert {"discover-sample", "fetch-sample", "extract-sample"} <= names
    assert {n.rsplit("-", 1)[0] for n in names} >= {"load-pages", "dedupe", "load-events"}

    artifacts = {a["key"]: a for a in prefect_server.artifacts(run["id"])}
    assert set(artifacts) >= {reporting.SUMMARY_KEY, reporting.EVENTS_KEY, reporting.PROGRESS_KEY}
    assert artifacts[reporting.PROGRESS_KEY]["data"] == 100.0
    with read_only(tmp_path / "newsdedup.duckdb") as con:
        titles = {t for (t,) in con.execute("SELECT title FROM events").fetchall()}
    assert titles
    table = artifacts[reporting.EVENTS_KEY]["data"]
    rows = json.loads(table) if isinstance(table, str) else table
    assert {r["title"] for r in rows} == titles
    assert {r["status"] for r in rows} == {"new"}
    for title in titles:
        assert title.replace("|", "\\|") in artifacts[reporting.SUMMARY_KEY]["data"]
    assert "Time by stage" in artifacts[reporting.SUMMARY_KEY]["data"]

    # One newsdedup.event.created Prefect event per new event, for automations.
    deadline = time.monotonic() + 30
    emitted: list[dict] = []
    while time.monotonic() < deadline:
        page = prefect_server.post("events/filter", {
            "filter": {"event": {"name": [reporting.EVENT_CREATED]}}, "limit": 50,
        })
        emitted = page["events"]
        if len(emitted) >= len(titles):
            break
        time.sleep(1.0)
    assert {e["resource"]["prefect.resource.name"] for e in emitted} >= titles
    assert all(e["resource"]["prefect.resource.id"].startswith(reporting.EVENT_RESOURCE_PREFIX)
               for e in emitted)


def test_stage_names_are_the_pipeline_steps() -> None:
    assert STAGES == ("discover", "fetch", "extract", "dedupe", "load")


@pytest.mark.slow
def test_a_run_while_another_holds_the_warehouse_fails_at_once(
    prefect_server: PrefectServer, sample_site: str, tmp_path: Path
) -> None:
    """Overlap is refused twice over: the deployment's concurrency limit (test_serve), and the
    warehouse's run lock for runs started any other way (a manual `newsdedup run`)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.pipeline import ingest
    from warehouse.store import hold_run_lock

    config = write_config(tmp_path, sample_site)
    t0 = time.monotonic()
    with hold_run_lock(tmp_path / "newsdedup.duckdb"), \
            temporary_settings({PREFECT_API_URL: prefect_server.api}):
        with pytest.raises(WarehouseBusy, match="already loading"):
            ingest(str(config))
    assert time.monotonic() - t0 < 30  # no retries, no waiting
