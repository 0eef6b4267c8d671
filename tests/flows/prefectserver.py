"""Helpers for the orchestration tests: a handle on a real Prefect server (run the CLI against
it, read its REST API) and the sample settings file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from flows.commands.demo import demo_config

REPO = Path(__file__).resolve().parents[2]
# What prefect.client.base retries (PrefectHttpxAsyncClient: retry_codes).
RETRIED_CODES = frozenset({429, 502, 503})


class PrefectServer:
    def __init__(self, api: str, home: Path) -> None:
        self.api = api
        self.home = home

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(PREFECT_API_URL=self.api, PREFECT_HOME=str(self.home), **extra)
        return env

    def cli(
        self, *args: str, timeout: float = 300, **extra_env: str
    ) -> subprocess.CompletedProcess[str]:
        """`newsdedup ARGS` in a fresh process talking to this server."""
        return subprocess.run(
            [sys.executable, "-m", "flows.cli", *args], cwd=REPO, env=self.env(**extra_env),
            capture_output=True, text=True, timeout=timeout,
        )

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._request("POST", path, body or {})

    def get(self, path: str) -> Any:
        return self._request("GET", path)

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One API call, retried on the codes Prefect's own client retries (429, 502, 503; the
        server answers 503 while its SQLite database is busy, as it was once under `make test`
        when `serve` registered a deployment): up to 5 tries, 1, 2, 4, 8 s apart."""
        for attempt in range(5):
            r = httpx.request(method, f"{self.api}/{path.lstrip('/')}", json=body, timeout=30)
            if r.status_code not in RETRIED_CODES or attempt == 4:
                break
            time.sleep(2**attempt)
        r.raise_for_status()
        return r.json()

    def flow_runs(self, **flow_run_filter: Any) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"sort": "START_TIME_DESC"}
        if flow_run_filter:
            body["flow_runs"] = flow_run_filter
        return list(self.post("flow_runs/filter", body))

    def task_runs(self, flow_run_id: str) -> list[dict[str, Any]]:
        return list(self.post(
            "task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200}
        ))

    def artifacts(self, flow_run_id: str) -> list[dict[str, Any]]:
        return list(self.post(
            "artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
        ))

    def wait_for_flow_run(self, timeout_s: float = 150, **flow_run_filter: Any) -> dict[str, Any]:
        """The newest matching flow run once it is in a final state."""
        deadline = time.monotonic() + timeout_s
        last: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            last = self.flow_runs(**flow_run_filter)
            if last and last[0]["state"]["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
                return last[0]
            time.sleep(1.0)
        raise AssertionError(f"no finished flow run after {timeout_s} s: {last[:1]}")


def write_config(directory: Path, base_url: str, extra: str = "") -> Path:
    config = directory / "newsdedup.toml"
    config.write_text(demo_config(base_url, directory / "newsdedup.duckdb") + "\n" + extra)
    return config
