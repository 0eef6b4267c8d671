"""The warehouse's named errors. DuckDB's driver exceptions are translated into these at the
boundary (opening a file, running a load, running a query), so callers catch what happened, not
which driver said it; each message says how to fix it."""

from __future__ import annotations

from pathlib import Path

import duckdb


class WarehouseError(RuntimeError):
    """A warehouse operation failed; the message says what and how to fix it."""


class WarehouseBusy(WarehouseError):
    """Another process holds the writer (a run is already loading)."""


class WarehouseCorrupt(WarehouseError):
    """A warehouse file is not a readable DuckDB database."""


class NoWarehouse(WarehouseError, FileNotFoundError):
    """There is no published warehouse at the path yet."""


class QueryError(WarehouseError, ValueError):
    """A query the warehouse refused or could not run; the message says why."""


class ExportError(WarehouseError):
    """An export that was refused (a bad destination) or failed."""


def is_lock_conflict(exc: BaseException) -> bool:
    # DuckDB 2.0: 'IO Error: Could not set lock on file "...": Conflicting lock is held in ...'
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def is_wal_mismatch(exc: BaseException) -> bool:
    # DuckDB 2.0: 'Failure while replaying WAL file "...": WAL does not match database file.'
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and (
        "replaying wal" in text or "wal does not match" in text
    )


def translate_open_error(path: Path, exc: duckdb.Error) -> WarehouseError:
    """The named error for a failure to open `path`."""
    if is_lock_conflict(exc):
        return WarehouseBusy(
            f"{path} is held by another process (a run is already loading?); wait for it to"
            f" finish, or query the published snapshot instead ({exc})"
        )
    if "not a valid duckdb database" in str(exc).lower():
        return WarehouseCorrupt(
            f"{path} is not a DuckDB database: point --warehouse at a warehouse file, or move"
            f" the damaged file aside and rerun `newsdedup run` ({exc})"
        )
    return WarehouseError(f"could not open {path}: {exc}")
