"""warehouse/tables.py is the one declaration of every table's columns: the migrations create
exactly it, released migrations still create what they did when released, and a load batch
must fill exactly its table's columns."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from warehouse import lake, tables
from warehouse.schema import CURRENT_VERSION, MIGRATIONS, migrate

DECLARED = (*tables.TABLES, tables.SCHEMA_VERSION)


def columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str, bool]]:
    return [(name, type_, null == "NO") for name, type_, null, *_ in
            con.execute(f"DESCRIBE {table}").fetchall()]


def declared(table: tables.Table, version: int) -> list[tuple[str, str, bool]]:
    return [(c.name, c.type, c.not_null) for c in table.columns
            if c.since is not None and c.since <= version]


def test_a_fresh_warehouse_has_the_declared_columns(tmp_path: Path) -> None:
    plain = duckdb.connect()
    the_lake = lake.connect(tmp_path / "w.lake")
    for con in (plain, the_lake):
        assert migrate(con) == CURRENT_VERSION
        for table in DECLARED:
            assert columns(con, table.name) == declared(table, CURRENT_VERSION), table.name
    the_lake.close()


# What each released migration left, as sha256 of its tables' columns (name, type, NOT NULL, in
# order), computed on b846db7, before the columns moved to warehouse/tables.py. Changing a
# released column's `since`, type or nullability changes what an old migration creates, and
# fails here. A new migration needs no entry.
RELEASED = {
    1: "9ed0585873cc53b436fd9ce3537e76dc0f99287c95c92805ee9fa27ec1e3ac9a",
    2: "5c3bdf4fdf02ad302b0560ba55595bb80292db6b208637065ab2cc86f14f9bd3",
    3: "2d7aebfbd5461be944f5a834b5afee29e2c841ff110731568e4a6b2e185f2f6f",
    4: "b4ee165fcd756b2e8e68a69b5ce536e7bc55bbd3f377832e1a42a65290bb0374",
}


def fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    names = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
        " ORDER BY 1").fetchall()]
    shape = {name: columns(con, name) for name in names}
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize("version", sorted(RELEASED))
def test_released_migrations_create_what_they_did(version: int) -> None:
    con = duckdb.connect()
    assert migrate(con, MIGRATIONS[:version]) == version
    assert fingerprint(con) == RELEASED[version]
    for table in DECLARED:
        if table.since <= version:
            assert columns(con, table.name) == declared(table, version), table.name


def test_a_batch_fills_exactly_its_tables_columns() -> None:
    rows = {"alias_id": ["a"], "event_id": ["b"], "run_id": ["r"]}
    with pytest.raises(ValueError, match=r"missing \['merged_at'\]"):
        tables.EVENT_ALIASES.batch(rows)
    with pytest.raises(ValueError, match=r"unknown \['typo'\]"):
        tables.EVENT_ALIASES.batch({**rows, "merged_at": [None], "typo": [1]})
    batch = tables.EVENT_ALIASES.batch({**rows, "merged_at": [None]})
    assert batch.schema.names == list(tables.EVENT_ALIASES.names)


def test_a_declaration_out_of_table_order_is_refused() -> None:
    with pytest.raises(ValueError, match="table order"):
        tables.Table("t", (tables.Column("b", "VARCHAR", since=2), tables.Column("a", "VARCHAR")))
