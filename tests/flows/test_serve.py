"""`newsdedup serve` against a real `prefect server start` on 127.0.0.1: the deployment carries the
configured schedule and concurrency limit, and a triggered run completes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.cli import main
from flows.commands.serve import DEPLOYMENT_NAME, FLOW_NAME, SAMPLE_CRON
from flows.server import prefect_executable
from tests.flows.prefectserver import REPO, PrefectServer, write_config
from warehouse.queries import read_only

SCHEDULE = '[schedule]\ncron = "0 6 * * 1"\ntimezone = "Europe/Berlin"\n'


def test_serve_refuses_a_settings_file_without_a_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    config = write_config(tmp_path, "http://127.0.0.1:9")
    assert main(["serve", "--config", str(config)]) == 2
    assert "[schedule]" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_registers_the_schedule_and_a_triggered_run_completes(
    prefect_server: PrefectServer, sample_site: str, tmp_path: Path
) -> None:
    # The README's lines, as a user types them in the folder of their newsdedup.toml (the
    # README's `export PREFECT_API_URL=...` is the env; tests/test_readme.py holds the list).
    config = write_config(tmp_path, sample_site, SCHEDULE)
    name = DEPLOYMENT_NAME
    log = tmp_path / "serve.log"
    # COLUMNS: `prefect deployment ls` draws a table and cuts names to the terminal width.
    env = prefect_server.env(PREFECT_RUNNER_POLL_FREQUENCY="2", COLUMNS="200",
                             PYTHONPATH=str(REPO))
    with open(log, "wb") as out:
        serving = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve", "--config", "newsdedup.toml"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        deployment = None
        while deployment is None:
            assert serving.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                deployment = prefect_server.get(f"deployments/name/{FLOW_NAME}/{name}")
            except Exception:
                time.sleep(1.0)

        # `prefect deployment ls` runs while the triggered run goes (two CLI start-ups in a row
        # would cost ~10 s each here).
        listing = subprocess.Popen([prefect_executable(), "deployment", "ls"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        (schedule,) = deployment["schedules"]
        assert schedule["schedule"]["cron"] == "0 6 * * 1"
        assert schedule["schedule"]["timezone"] == "Europe/Berlin"
        assert deployment["global_concurrency_limit"]["limit"] == 1
        assert deployment["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
        assert deployment["parameters"] == {"config_path": str(config.resolve())}

        # serve starts the first run itself (the same API call as `prefect deployment run`),
        # so that nobody waits for the schedule's next tick.
        t0 = time.monotonic()
        deadline = time.monotonic() + 300  # a loaded 2-core machine: the server is slow
        runs: list[dict[str, object]] = []
        while not runs:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            runs = prefect_server.post("flow_runs/filter", {
                "flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}})
            time.sleep(0.5)
        run_id = runs[0]["id"]
        deadline = time.monotonic() + 300
        while True:
            run = prefect_server.get(f"flow_runs/{run_id}")
            if run["state"]["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
                break
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1.0)
        print(f"first run finished {time.monotonic() - t0:.1f} s after registration;"
              f" flow run time {run['total_run_time']:.1f} s")
        listed, _ = listing.communicate(timeout=120)
        assert f"{FLOW_NAME}/{name}" in listed, listed
        assert run["state"]["type"] == "COMPLETED", log.read_text()[-3000:]
        assert "first run started: " in log.read_text()
        with read_only(tmp_path / "newsdedup.duckdb") as con:
            statuses = con.execute("SELECT status FROM runs").fetchall()
            n_events = con.execute("SELECT count(*) FROM events").fetchone()
        assert statuses == [("completed",)] and n_events and n_events[0] > 0

        # "another run now": the README's `prefect deployment run`, served by the same process.
        started = subprocess.run(
            [prefect_executable(), "deployment", "run", f"{FLOW_NAME}/{name}"], env=env,
            capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stdout + started.stderr
        [again_id] = re.findall(r"UUID: ([0-9a-f-]{36})", started.stdout)
        again = prefect_server.wait_for_flow_run(timeout_s=300, id={"any_": [again_id]})
        assert again["deployment_id"] == deployment["id"]
        assert again["state"]["type"] == "COMPLETED", log.read_text()[-3000:]
        with read_only(tmp_path / "newsdedup.duckdb") as con:
            assert con.execute("SELECT count(*) FROM runs").fetchone() == (2,)
    finally:
        serving.terminate()  # SIGTERM: the runner starts pausing the schedule on the way out
        serving.wait(60)


@pytest.mark.slow
def test_make_serve_uses_the_running_server_and_ctrl_c_pauses(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    # `make serve` in a folder without newsdedup.toml runs `newsdedup serve --start-server
    # --sample` (tests/test_readme.py checks the recipe). A server answers at PREFECT_API_URL,
    # so it starts none; it registers the sample's schedule and starts a first run at once;
    # Ctrl-C (SIGINT to the terminal's process group) pauses the schedule. (A Ctrl-C in the
    # second after registration, before the runner has started, stops serve without pausing.)
    log = tmp_path / "serve.log"
    env = prefect_server.env(PREFECT_RUNNER_POLL_FREQUENCY="2", PYTHONPATH=str(REPO))
    with open(log, "wb") as out:
        serving = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve", "--start-server", "--sample"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while "first run started: " not in log.read_text():
            if serving.poll() is not None:
                if "in use by another program" in log.read_text():
                    pytest.skip(f"the sample's port is taken here: {log.read_text()[-300:]}")
                pytest.fail(log.read_text()[-3000:])
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1.0)
        [first_id] = re.findall(r"first run started: \S*/runs/flow-run/([0-9a-f-]{36})",
                                log.read_text())
        # Ctrl-C once the first run has ended: with the run in flight, full-suite CI runs saw
        # serve not stop within 300 s (alone it stops in seconds); a run cut short by a signal
        # is the interrupt tests' subject, not this one's.
        deadline = time.monotonic() + 300
        while prefect_server.get(f"flow_runs/{first_id}")["state"]["type"] not in {
                "COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1.0)
        os.killpg(serving.pid, signal.SIGINT)
        assert serving.wait(120) == 0, log.read_text()[-3000:]
    finally:
        if serving.poll() is None:
            os.killpg(serving.pid, signal.SIGKILL)
            serving.wait(30)
    text = log.read_text()
    assert f"Prefect server already running at {prefect_server.api}" in text
    deployment = prefect_server.get(f"deployments/name/{FLOW_NAME}/{DEPLOYMENT_NAME}")
    (schedule,) = deployment["schedules"]
    assert schedule["schedule"]["cron"] == SAMPLE_CRON
    assert deployment["paused"] or not schedule["active"], deployment


def test_start_server_only_starts_one_on_127_0_0_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A configured server that does not answer and is not ours to start: say so, start nothing.
    monkeypatch.setenv("PREFECT_API_URL", "http://localhost:9/api")
    assert main(["serve", "--start-server"]) == 2
    assert "no Prefect server answers at http://localhost:9/api" in capsys.readouterr().err


def test_server_urls() -> None:
    from flows import server

    assert server.api_url(4200) == "http://127.0.0.1:4200/api"
    assert server.ui_url("http://127.0.0.1:4200/api") == "http://127.0.0.1:4200"
    assert not server.is_healthy(server.api_url(server.free_port()), timeout_s=1.0)
