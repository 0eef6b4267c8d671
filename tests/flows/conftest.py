"""A real `prefect server start` on 127.0.0.1 for the orchestration acceptance tests (one per
session), and the bundled sample served on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from flows.sampleserver import SAMPLE_DIR, serve_directory
from tests.flows.prefectserver import PrefectServer


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """`prefect server start` on a free 127.0.0.1 port with its own PREFECT_HOME and database."""
    from flows.server import running_server

    home = tmp_path_factory.mktemp("prefect-home")
    log = home / "server.log"
    t0 = time.monotonic()
    with running_server(home=home, log_path=log) as api:
        print(f"prefect server at {api} healthy after {time.monotonic() - t0:.1f} s")
        yield PrefectServer(api, home)


@pytest.fixture(scope="module")
def sample_site() -> Iterator[str]:
    with serve_directory(SAMPLE_DIR) as base_url:
        yield base_url
