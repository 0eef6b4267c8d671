"""Data flows one way: extract/ and dedupe/ know nothing of Prefect or DuckDB; warehouse/ knows
nothing of Prefect; only flows/ imports Prefect. Read the imports to keep it that way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "extract": {"prefect", "duckdb", "flows", "warehouse", "dedupe", "prefect_dask"},
    "dedupe": {"prefect", "duckdb", "flows", "warehouse", "prefect_dask"},
    "warehouse": {"prefect", "flows", "prefect_dask"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_downstream_only(package: str) -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in sorted((REPO / package).rglob("*.py"))
        if imported_roots(path) & FORBIDDEN[package]
    }
    assert offenders == {}


def test_sql_lives_in_warehouse() -> None:
    """No module outside warehouse/ executes SQL."""
    offenders = []
    for package in ("extract", "dedupe", "flows"):
        for path in (REPO / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if ".execute(" in text and "duckdb" in text:
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
