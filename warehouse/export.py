"""Export the published warehouse to Parquet for downstream tools (pandas, Spark, another DuckDB).

Safety: the relation names come from a fixed list (never from the user); the destination is
passed to DuckDB's COPY as a bound parameter (never pasted into SQL); every file is written into
a fresh private temporary directory inside DIR and renamed to DIR/<name>.parquet, so a file is
complete or absent, and a symlink planted at a destination is replaced, never written through.
All files come from one read-only connection to one snapshot, so they agree with each other.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from warehouse.errors import ExportError
from warehouse.queries import read_only, schema_hint

# Tables, then the views people ask for most. dedupe_state is included: its payload is opaque
# (dedupe/'s signatures) but it is what a rebuild of the grouping needs.
TABLES: tuple[str, ...] = (
    "articles", "events", "event_articles", "event_aliases", "fetches", "runs", "run_stages",
    "url_state", "dedupe_state", "schema_version",
)
VIEWS: tuple[str, ...] = (
    "copies", "latest_events", "event_timeline", "event_ids", "failures", "failures_by_reason",
    "source_stats",
)
EXPORTS: tuple[str, ...] = TABLES + VIEWS
FORMATS: tuple[str, ...] = ("parquet",)


@dataclass(frozen=True)
class ExportedFile:
    name: str
    path: Path
    rows: int


def check_destination(out_dir: Path) -> Path:
    """The resolved destination directory, created if missing. Refuses a path that exists and
    is not a directory."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(
            f"{out_dir} exists and is not a directory: pass a directory (it is created if"
            " missing) for the <name>.parquet files"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {out_dir}: {exc}") from exc
    return out_dir.resolve()


def target_path(out_dir: Path, name: str) -> Path:
    """DIR/<name>.parquet for a name from EXPORTS; anything else, or a path that would leave
    DIR, is refused."""
    if name not in EXPORTS:
        raise ExportError(f"{name!r} is not exportable; choose from {', '.join(EXPORTS)}")
    target = out_dir / f"{name}.parquet"
    if target.parent != out_dir or os.path.dirname(os.path.abspath(target)) != str(out_dir):
        raise ExportError(f"refusing to write {target}: outside {out_dir}")
    return target


def export_parquet(
    warehouse: Path, out_dir: Path, names: tuple[str, ...] = EXPORTS
) -> list[ExportedFile]:
    """Write each of `names` from the published warehouse to out_dir/<name>.parquet."""
    dest = check_destination(out_dir)
    targets = [(name, target_path(dest, name)) for name in names]  # refuse before writing
    written: list[ExportedFile] = []
    # Not locked down: COPY needs to write files. The statements below are all fixed text.
    with read_only(warehouse, locked_down=False) as con:
        work = Path(tempfile.mkdtemp(prefix=".export-", dir=dest))  # mode 0700, fresh name
        try:
            for name, target in targets:
                tmp = work / target.name
                try:
                    # name is from EXPORTS (checked above), the path is a bound parameter.
                    con.execute(
                        f"COPY (SELECT * FROM {name}) TO $1 (FORMAT parquet, COMPRESSION zstd)",
                        [str(tmp)],
                    )
                    n = con.execute(
                        "SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata($1)",
                        [str(tmp)],
                    ).fetchone()
                except duckdb.Error as exc:
                    raise ExportError(f"could not export {name}: {exc}{schema_hint(con)}") from exc
                os.replace(tmp, target)
                written.append(ExportedFile(name, target, int(n[0]) if n else 0))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return written
