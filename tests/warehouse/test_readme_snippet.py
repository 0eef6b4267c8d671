"""Every SQL example in the README and docs/queries.md runs on a loaded warehouse."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from warehouse.queries import run_query

SNIPPET = Path(__file__).resolve().parents[2] / "README.md"
LOADSCRIPT = Path(__file__).with_name("loadscript.py")
QUERIES = SNIPPET.with_name("docs") / "queries.md"
EXAMPLES = [
    sql for doc in (SNIPPET, QUERIES)
    for sql in re.findall(r"```sql\n(.*?)```", doc.read_text(), flags=re.S)
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.spec_from_file_location("loadscript", LOADSCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path_factory.mktemp("snippet") / "w.duckdb"
    module.load(path, "r")
    return path


def test_the_snippet_has_examples() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("sql", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_each_example_runs_and_returns_rows(warehouse: Path, sql: str) -> None:
    result = run_query(warehouse, sql)
    assert result.rows, sql
