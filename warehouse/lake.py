"""Connections to the warehouse's DuckLake: a SQLite catalog (`<path>/catalog.sqlite`) and the
Parquet files it lists (`<path>/data/`), one snapshot per commit.

Why DuckLake (docs/design.md, "A lake instead of a copied file"): a DuckDB file lets one process
write it and no other open it meanwhile, so the warehouse used to publish a full copy of itself
after every run, costing time and disk in proportion to its history. In a lake a commit adds
files and catalog rows; readers in other processes open any committed snapshot while a writer
works, and a commit killed halfway is never in the catalog.

The extensions are LOADed from the `duckdb-extension-*` wheels' own files: a run never
downloads anything, and the versions are the ones the project pins.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import duckdb

from warehouse.errors import WarehouseError

CATALOG = "catalog.sqlite"
DATA = "data"
ALIAS = "lake"  # the name the lake is attached under in every connection of this package

# (module of the wheel, extension name): the sqlite scanner first, DuckLake's catalog needs it.
_EXTENSIONS = (
    ("duckdb_extension_sqlite_scanner", "sqlite_scanner"),
    ("duckdb_extension_ducklake", "ducklake"),
)


def catalog_path(path: Path) -> Path:
    return Path(path) / CATALOG


def data_path(path: Path) -> Path:
    return Path(path) / DATA


def is_lake(path: Path) -> bool:
    return catalog_path(path).is_file()


def quote(text: str) -> str:
    """A SQL string literal (ATTACH takes no bound parameters)."""
    return "'" + text.replace("'", "''") + "'"


def extension_file(module: str, name: str) -> Path:
    """The extension binary shipped in the wheel `module`, for this DuckDB version."""
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise WarehouseError(
            f"the {name} extension is missing: install the pinned wheels (`make .venv/.installed`"
            f" or `pip install -e .`) ({exc})"
        ) from exc
    root = Path(mod.__file__ or "").parent / "extensions"
    found = root / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not found.is_file():
        raise WarehouseError(
            f"{found} not found: the {module} wheel does not match duckdb {duckdb.__version__};"
            " reinstall the pinned versions from pyproject.toml"
        )
    return found


# While a writer commits, the SQLite catalog is locked for a moment; a reader (or a second
# writer's publish) waits for it, up to this long, instead of failing with "database is
# locked" (as a reader of the test suite once did on a heavily loaded machine).
BUSY_TIMEOUT = "META_BUSY_TIMEOUT 30000"  # milliseconds


def connect(
    path: Path,
    *,
    read_only: bool = False,
    snapshot: int | None = None,
    config: dict[str, str | bool | int | float | list[str]] | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB session with the lake at `path` attached as `lake` and in use.
    A writer (read_only false) creates the lake when it is missing; `snapshot` pins a reader to
    one committed snapshot."""
    settings: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
    }
    settings.update(config or {})
    con = duckdb.connect(":memory:", config=settings)
    try:
        con.execute("SET enable_progress_bar = false")  # no bar on a run's terminal and logs
        for module, name in _EXTENSIONS:
            con.execute(f"LOAD {quote(str(extension_file(module, name)))}")
        attach(con, path, read_only=read_only, snapshot=snapshot)
    except BaseException:
        con.close()
        raise
    return con


def attach(
    con: duckdb.DuckDBPyConnection, path: Path, *, read_only: bool, snapshot: int | None = None
) -> None:
    """Attach the lake at `path` as `lake` (detaching the one attached before) and use it."""
    path = Path(path).resolve()
    if not read_only:
        data_path(path).mkdir(parents=True, exist_ok=True)
    options = [
        f"DATA_PATH {quote(str(data_path(path)) + '/')}",
        # The lake can be moved or mounted elsewhere: its files are where it is now.
        "OVERRIDE_DATA_PATH true",
        BUSY_TIMEOUT,
    ]
    if read_only:
        options.append("READ_ONLY")
    if snapshot is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    con.execute("USE memory")
    con.execute(f"DETACH DATABASE IF EXISTS {ALIAS}")
    con.execute(
        f"ATTACH {quote('ducklake:sqlite:' + str(catalog_path(path)))} AS {ALIAS}"
        f" ({', '.join(options)})"
    )
    con.execute(f"USE {ALIAS}")


def session_sql(path: Path, snapshot: int | None) -> str:
    """The statements that open the lake at `path` read-only in a user's own DuckDB 1.5.5
    session (the CLI or Python), at `snapshot` (the published one: a run's stages are
    committed one by one, and only a published snapshot holds whole runs)."""
    path = Path(path).resolve()
    lines = [f"LOAD {quote(str(extension_file(m, n)))};" for m, n in _EXTENSIONS]
    options = [f"DATA_PATH {quote(str(data_path(path)) + '/')}", "READ_ONLY", BUSY_TIMEOUT]
    if snapshot is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    lines.append(
        f"ATTACH {quote('ducklake:sqlite:' + str(catalog_path(path)))} AS news"
        f" ({', '.join(options)});"
    )
    lines.append("USE news;")
    return "\n".join(lines)


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute(f"SELECT id FROM {ALIAS}.current_snapshot()").fetchone()
    return int(row[0]) if row else 0


def data_files(path: Path) -> tuple[int, int]:
    """(number of files, bytes) under the lake's data directory."""
    n = size = 0
    for f in data_path(path).rglob("*"):
        if f.is_file():
            n += 1
            size += f.stat().st_size
    return n, size
