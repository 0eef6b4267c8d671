"""Issue 3's acceptance run: one `newsdedup run` over a feed listing every hostile URL and the
good articles finishes in under 2 minutes and 1 GiB, exits 0, loads every good article and
records a reason for every bad URL."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.extract.hostile import FETCH_OK_CLEAN_FAILS, HOSTILE, HostileServer
from warehouse.queries import read_only

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _config(server: HostileServer, warehouse: Path) -> str:
    # Short deadlines as in tests/extract: what is measured is that nothing stalls the run,
    # not how long a patient production policy would wait.
    return f"""
[warehouse]
path = {str(warehouse)!r}

[fetch]
allow_private_networks = true   # the hostile server is on 127.0.0.1
total_timeout_s = 2.0
connect_timeout_s = 1.0
max_bytes = 1048576
per_host_delay_s = 0.0
per_host_concurrency = 16
concurrency = 16
retries = 1

[[sources]]
name = "hostile"
feed = "{server.url('/feed.xml')}"
"""


def test_one_run_over_the_hostile_feed(prefect_harness: None, tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    warehouse = tmp_path / "hostile.duckdb"
    config = tmp_path / "newsdedup.toml"
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect"))
    api = PREFECT_API_URL.value()
    if api:
        env["PREFECT_API_URL"] = api  # the session's test server, not a fresh ephemeral one
    with HostileServer() as server:
        config.write_text(_config(server, warehouse), encoding="utf-8")
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "flows.cli", "run", "--config", str(config)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
        )
        elapsed = time.monotonic() - started
        urls = {path: server.url(path) for path in [*server.good_paths(), *server.bad_paths()]}
    peak_rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    stages = [line for line in done.stderr.splitlines()
              if "Finished in state" in line or " in " in line and " s" in line]
    print(f"hostile run: exit {done.returncode} in {elapsed:.1f}s, "
          f"largest child peak RSS {peak_rss_mib:.0f} MiB\n{done.stdout[-1500:]}")
    print("\n".join(stages[-30:]))
    assert done.returncode == 0, done.stderr[-3000:]
    assert elapsed < 120
    assert peak_rss_mib < 1024

    with read_only(warehouse) as con:
        rows = con.execute("SELECT url, status, extract_status FROM fetches").fetchall()
        article_status = dict(con.execute("SELECT url, status FROM articles").fetchall())
    fetched = {url: (status, extracted) for url, status, extracted in rows}
    assert set(fetched) == set(urls.values())  # one row per URL in the feed, nothing else
    for path in server.good_paths():
        assert fetched[urls[path]] == ("ok", "ok"), path
        assert article_status[urls[path]] == "ok", path
    for path, reason in HOSTILE.items():
        assert fetched[urls[path]][0] == reason, path
    for path, reasons in FETCH_OK_CLEAN_FAILS.items():
        status, extracted = fetched[urls[path]]
        assert status == "ok" and extracted in reasons, (path, extracted)
