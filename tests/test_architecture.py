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


def test_table_columns_are_declared_in_warehouse_tables_only() -> None:
    """A table's columns are stated once, in warehouse/tables.py: no other module creates a
    table, adds a column or builds an Arrow schema (the loads use `Table.batch`)."""
    offenders = []
    for package in ("extract", "dedupe", "flows", "warehouse"):
        for path in sorted((REPO / package).rglob("*.py")):
            name = str(path.relative_to(REPO))
            if name == "warehouse/tables.py":
                continue
            text = path.read_text(encoding="utf-8")
            for marker in ("CREATE TABLE", "ADD COLUMN", "pa.schema(", "pa.field(",
                           "from_pylist("):
                if marker in text:
                    offenders.append(f"{name}: {marker}")
    assert offenders == []


# extract/ inside: each module one job, and the jobs stacked so that a module only imports the
# ones below it (no cycles, and the transport knows nothing of the Fetcher built on it).
EXTRACT_LAYERS = {
    "records": 0,  # the typed records every stage passes on
    # rules with no I/O: URL rules, address guard, bytes -> text, politeness, robots.txt rules,
    # feed and sitemap parsing
    "urls": 1, "guard": 1, "body": 1, "policy": 1, "robots": 1, "feeds": 1, "sitemaps": 1,
    "workers": 1,  # how many extraction workers and what time limit the pool accepts
    # one kind of I/O each: HTTP transport, pages on this machine; HTML -> Article
    "http": 2, "local": 2, "clean": 2,
    # the two streaming steps: fetch (Targets -> FetchedPages), extraction pool (-> Articles)
    "fetch": 3, "pool": 3, "evaluate": 3,
    # discovery (Source -> Targets) uses the run's Fetcher
    "sources": 4,
}
# Extraction works on pages in hand: it never fetches, and fetching never parses articles.
EXTRACTION = {"clean", "pool", "evaluate"}
FETCHING = {"guard", "http", "policy", "robots", "fetch", "local", "sources"}
# Only the transport and the Fetcher (which names the transport's errors) touch the network
# libraries; the rest can be tested on bytes.
NETWORK = {"httpx", "httpcore", "socket"}
NETWORK_MODULES = {"guard", "http", "fetch"}


def extract_imports(path: Path) -> set[str]:
    """The extract modules `path` imports (`from extract import guard` counts as guard)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != "extract":
                continue
            if len(parts) > 1:
                names.add(parts[1])
            else:
                names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".")[1] for alias in node.names
                         if alias.name.startswith("extract."))
    return names


def test_every_extract_module_has_a_layer() -> None:
    modules = {p.stem for p in (REPO / "extract").glob("*.py")} - {"__init__"}
    assert modules == set(EXTRACT_LAYERS)


def test_extract_modules_import_only_the_layers_below() -> None:
    offenders = {}
    for name, rank in EXTRACT_LAYERS.items():
        path = REPO / "extract" / f"{name}.py"
        upward = sorted(m for m in extract_imports(path) if EXTRACT_LAYERS.get(m, 0) >= rank)
        crossing = sorted(extract_imports(path) & (FETCHING if name in EXTRACTION else set()))
        network = sorted(imported_roots(path) & NETWORK) if name not in NETWORK_MODULES else []
        if upward or crossing or network:
            offenders[name] = upward + crossing + network
    assert offenders == {}


def test_flow_tasks_live_in_tasks_py_and_executors_only_wire_them() -> None:
    """flows/tasks.py defines every Prefect task; the flow is in pipeline.py; the feed and the
    executors wire tasks together and never open the warehouse themselves."""
    offenders = []
    for path in sorted((REPO / "flows").rglob("*.py")):
        name = str(path.relative_to(REPO))
        text = path.read_text(encoding="utf-8")
        if "@task(" in text and name != "flows/tasks.py":
            offenders.append(f"{name}: defines a task")
        if "@flow(" in text and name != "flows/pipeline.py":
            offenders.append(f"{name}: defines a flow")
        if name.startswith(("flows/executors/", "flows/feed.py")) and "Warehouse" in text:
            offenders.append(f"{name}: opens the warehouse")
    assert offenders == []
