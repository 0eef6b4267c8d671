"""The whole pipeline on the bundled sample, served on 127.0.0.1, through the real Prefect flow."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from flows.cli import main
from flows.commands.demo import demo_config
from flows.sampleserver import SAMPLE_DIR, serve_directory
from warehouse import lake
from warehouse.queries import read_only, table_counts

pytestmark = pytest.mark.slow

# How often each run of `sample_run` connected to the lake: {"writer": n, "reader": n}.
OPENS: list[Counter[str]] = []


@contextmanager
def counting_opens() -> Iterator[Counter[str]]:
    """Count the connections to the lake made inside the block (warehouse.lake.connect is
    the one way in, for the writer and for readers alike)."""
    counts: Counter[str] = Counter()
    real = lake.connect

    def connect(path: Path, *, read_only: bool = False, **kw: Any) -> Any:
        counts["reader" if read_only else "writer"] += 1
        return real(path, read_only=read_only, **kw)

    lake.connect = connect  # type: ignore[assignment]
    try:
        yield counts
    finally:
        lake.connect = real


@pytest.fixture(scope="module")
def sample_run(
    prefect_harness: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path, dict[str, int], dict[str, int]]]:
    tmp = tmp_path_factory.mktemp("e2e")
    warehouse = tmp / "newsdedup.duckdb"
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


def test_a_run_opens_the_warehouse_once(sample_run) -> None:
    # Issue #20: a run opened the lake seven times (start, URL states, load pages, dedupe,
    # load events, finish, maintenance); now one session goes through every stage. Both runs:
    # the first creates the lake and maintains it, the second finds both done.
    assert OPENS == [Counter(writer=1), Counter(writer=1)]


def _by_file(warehouse: Path) -> dict[str, tuple[str, str]]:
    with read_only(warehouse) as con:
        rows = con.execute(
            "SELECT a.url, ea.event_id, ea.copy_id FROM articles a"
            " JOIN event_articles ea USING (article_id)"
        ).fetchall()
    return {url.rsplit("/", 1)[-1]: (event_id, copy_id) for url, event_id, copy_id in rows}


def test_every_sample_page_becomes_a_grouped_article(sample_run) -> None:
    _, warehouse, first, _ = sample_run
    expected = json.loads((SAMPLE_DIR / "expected.json").read_text())
    files = {f for members in expected["events"].values() for f in members}
    assert set(_by_file(warehouse)) == files
    assert first["articles"] == len(files)


def test_events_match_the_sample_truth(sample_run) -> None:
    _, warehouse, _, _ = sample_run
    expected = json.loads((SAMPLE_DIR / "expected.json").read_text())
    got = _by_file(warehouse)
    event_of = {key: {got[f][0] for f in files} for key, files in expected["events"].items()}
    for key, ids in event_of.items():
        assert len(ids) == 1, f"{key} split into {len(ids)} events"
    assert len({next(iter(ids)) for ids in event_of.values()}) == len(event_of)
    for key, files in expected["copies"].items():
        assert len({got[f][1] for f in files}) == 1, f"copy group {key} split"


def test_second_run_adds_no_rows(sample_run) -> None:
    _, _, first, second = sample_run
    for table in ("articles", "events", "event_articles", "event_aliases"):
        assert second[table] == first[table], table
    assert second["runs"] == first["runs"] + 1


def test_runs_ledger_records_both_runs(sample_run) -> None:
    _, warehouse, _, _ = sample_run
    with read_only(warehouse) as con:
        rows = con.execute(
            "SELECT status, n_articles_new, n_events_new FROM runs ORDER BY started_at"
        ).fetchall()
    assert [r[0] for r in rows] == ["completed", "completed"]
    assert rows[0][1] > 0 and rows[1][1] == 0 and rows[1][2] == 0


# -- the README, on a warehouse the demo's way --------------------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[str]:
    """The command lines of the README's code blocks (indented or fenced), comments cut."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:sh|bash)?\n(.*?)```", text, flags=re.S)
    blocks += re.findall(r"((?:\n {4}.*\S.*)+)", text)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines
            if line.startswith(("newsdedup ", ".venv/bin/newsdedup ", "make ", "prefect "))]


def test_every_readme_example_query_returns_rows_on_the_demo_warehouse(sample_run) -> None:
    # Issue #21: two examples returned nothing on the demo. The demo is `newsdedup run` on the
    # sample with demo_config, as sample_run does (twice: a second demo adds nothing).
    from warehouse.queries import run_query

    _, warehouse, _, _ = sample_run
    examples = [
        sql for doc in (README, README.with_name("docs") / "queries.md")
        for sql in re.findall(r"```sql\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S)
    ]
    assert len(examples) >= 8
    for sql in examples:
        assert run_query(warehouse, sql).rows, sql


def test_every_readme_command_is_one_the_tools_accept() -> None:
    # The commands are run by CI where they can be (make test, make lint, make typecheck; the
    # demo, query, run, serve and export paths by the tests of this suite); here each line must
    # at least parse: an option renamed or a target removed fails this test.
    import shlex

    from flows.cli import build_parser

    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    commands = readme_commands()
    assert any(c.startswith("make demo") for c in commands), commands
    for line in commands:
        argv = shlex.split(line.rstrip("&").strip())
        if argv[0] == "make":
            for target in argv[1:]:
                assert re.search(rf"^{target}:", makefile, flags=re.M), line
        elif argv[0].endswith("newsdedup"):
            build_parser().parse_args(argv[1:])  # SystemExit on anything it does not accept


def test_the_readme_is_a_ten_minute_read() -> None:
    # About 250 lines: the measurement narrative is in docs/benchmarks.md, the design choices in
    # docs/design.md.
    n_lines = len(README.read_text(encoding="utf-8").splitlines())
    assert n_lines <= 300, (
        f"README.md has {n_lines} lines: keep it a newcomer's ten-minute read (about 250) and"
        " move the detail to docs/ (design.md, benchmarks.md), linked from the README")
