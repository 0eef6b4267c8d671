"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the repository; tests that need it skip, with the reason, without it."""
    if not SHARED.is_dir():
        pytest.skip(f"needs the shared evaluation material at {SHARED} (absent here)")
    return SHARED


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server and database for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def sample_run(
    prefect_harness: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path, dict[str, Any], dict[str, Any]]]:
    """The demo's warehouse: the bundled sample served on 127.0.0.1 and run twice (a second run
    adds nothing) through the real flow with the demo's settings. Yields the settings file,
    the warehouse and the table counts after each run."""
    from flows.cli import main
    from flows.commands.demo import demo_config
    from flows.sampleserver import SAMPLE_DIR, serve_directory
    from tests.opens import OPENS, counting_opens
    from warehouse.queries import read_only, table_counts

    tmp = tmp_path_factory.mktemp("e2e")
    warehouse = tmp / "newsdedup.lake"
    with serve_directory(SAMPLE_DIR) as base_url:
        config = tmp / "newsdedup.toml"
        config.write_text(demo_config(base_url, warehouse))
        with counting_opens() as opens:
            assert main(["run", "--config", str(config)]) == 0
        OPENS.append(opens)
        with read_only(warehouse) as con:
            first = table_counts(con)
        with counting_opens() as opens:
            assert main(["run", "--config", str(config)]) == 0
        OPENS.append(opens)
        with read_only(warehouse) as con:
            second = table_counts(con)
    yield config, warehouse, first, second
