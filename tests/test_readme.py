"""The README is a newcomer's path (issue #21): a ten-minute read, and every command in it runs.

Every line of the README's shell blocks (indented, or fenced without a language or as `sh`) is
either run here, in a temporary folder on the demo's warehouse (`sample_run`) or on a small
slice of ../shared, or listed in ELSEWHERE with the test or CI step that runs it. A line that is
neither fails test_every_readme_command_is_run_here_or_elsewhere, and so does an ELSEWHERE entry
whose test is gone or no longer runs the command. Blocks fenced `text` are output, `toml` blocks
must load as settings, `sql` blocks must return rows on the demo's warehouse."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHELL = {"", "sh", "bash", "shell"}


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, and ("", body) of every indented one."""
    lines = text.splitlines()
    blocks: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = lines.index("```", i + 1)
            blocks.append((line[3:].strip(), "\n".join(lines[i + 1:end])))
            i = end + 1
        elif line.startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            body = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                body.append(lines[i][4:])
                i += 1
            blocks.append(("", "\n".join(body).strip("\n")))
        else:
            i += 1
    return blocks


def readme_commands() -> list[str]:
    """Every command line of the README's shell blocks, its comment cut."""
    out = []
    for lang, body in code_blocks(README.read_text(encoding="utf-8")):
        if lang not in SHELL:
            continue
        for line in body.splitlines():
            if shlex.split(line, comments=True):
                out.append(line.split(" #")[0].strip() if " #" in line else line.strip())
    return out


@dataclass(frozen=True)
class Elsewhere:
    """A README command run by another test (`path::function`) or by CI (`.ci/run`); `evidence`
    is (file, text): the file holds the command as that test or step runs it."""

    where: str
    evidence: tuple[str, str]


SERVE_TEST = ("tests/flows/test_serve.py::"
              "test_serve_registers_the_schedule_and_a_triggered_run_completes")
ELSEWHERE: dict[str, Elsewhere] = {
    # The recipe is `newsdedup demo`; the test runs it twice, the port busy the first time. Its
    # own port and warehouse: 8765 and ./newsdedup.lake belong to the person running the tests.
    "make demo": Elsewhere(
        "tests/test_newcomer_path.py::"
        "test_a_second_demo_adds_nothing_though_the_port_was_busy_the_first_time",
        ("tests/test_newcomer_path.py", 'demo = ["demo", "--port"')),
    "make test": Elsewhere(".ci/run", (".ci/run", "make test")),
    "make test lint typecheck": Elsewhere(".ci/run", (".ci/run", "make test lint typecheck")),
    # The recipe is `newsdedup serve --start-server --sample` (no ./newsdedup.toml here).
    "make serve": Elsewhere(
        "tests/flows/test_serve.py::test_make_serve_uses_the_running_server_and_ctrl_c_pauses",
        ("tests/flows/test_serve.py", '"serve", "--start-server", "--sample"')),
    # flows.server.start_server, which the session's real server (tests/flows/conftest.py)
    # and `make serve` use.
    "prefect server start --host 127.0.0.1 &": Elsewhere(
        "tests/flows/conftest.py::prefect_server",
        ("flows/server.py", '"server", "start", "--host", host')),
    "export PREFECT_API_URL=http://127.0.0.1:4200/api": Elsewhere(
        SERVE_TEST, ("tests/flows/prefectserver.py", "PREFECT_API_URL=self.api")),
    "newsdedup serve --config newsdedup.toml": Elsewhere(
        SERVE_TEST, ("tests/flows/test_serve.py", '"serve", "--config", "newsdedup.toml"')),
    "prefect deployment run 'newsdedup-ingest/newsdedup'": Elsewhere(
        SERVE_TEST, ("tests/flows/test_serve.py", '"deployment", "run", f"{FLOW_NAME}/')),
}

# Example values in README commands, and the query that gives the demo's real one.
PLACEHOLDERS = {
    "20250107T120000Z-1a2b3c4d": "SELECT run_id FROM published ORDER BY snapshot_id LIMIT 1",
    "VERSION => 42": "SELECT 'VERSION => ' || min(snapshot_id) FROM published",
}


def _makefile_recipe(target: str) -> str:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, flags=re.M)
    assert match, f"no target {target!r} in the Makefile"
    return match.group(1).replace("$(BIN)", ".venv/bin").strip()


def test_every_readme_command_is_run_here_or_elsewhere() -> None:
    commands = readme_commands()
    assert "make demo" in commands and len(commands) >= 10, commands
    here = [c for c in commands if c not in ELSEWHERE]
    unknown = [c for c in here if c != "make bench"
               and shlex.split(c)[0] not in ("newsdedup", ".venv/bin/newsdedup")]
    assert not unknown, (
        f"README commands nobody runs: {unknown}. Run them in test_readme_commands_run, or add"
        " them to ELSEWHERE with the test that runs them")
    assert not set(ELSEWHERE) - set(commands), "ELSEWHERE lists commands the README dropped"
    for command, e in ELSEWHERE.items():
        path, _, function = e.where.partition("::")
        text = (REPO / path).read_text(encoding="utf-8")
        if function:
            assert re.search(rf"^\s*def {function}\(", text, flags=re.M), (command, e.where)
        file, evidence = e.evidence
        assert evidence in (REPO / file).read_text(encoding="utf-8"), (command, e.evidence)
    assert _makefile_recipe("demo") == ".venv/bin/newsdedup demo"
    assert _makefile_recipe("serve") == (
        ".venv/bin/newsdedup serve --start-server $(if $(wildcard newsdedup.toml),,--sample)")
    assert _makefile_recipe("bench") == ".venv/bin/python -m bench"
    for target in ("test", "lint", "typecheck"):
        assert _makefile_recipe(target)


def _slice_shared(shared: Path, into: Path) -> Path:
    """A few pages of each extraction set and a few events of each clustering set, laid out as
    ../shared is: returns the extraction folder."""
    extraction = into / "eval" / "extraction"
    gold_from = shared / "eval" / "extraction" / "scrapinghub_aeb"
    gold = json.loads((gold_from / "ground-truth.json").read_text(encoding="utf-8"))
    keep = sorted(gold)[:4]
    (extraction / "scrapinghub_aeb" / "html").mkdir(parents=True)
    (extraction / "scrapinghub_aeb" / "ground-truth.json").write_text(
        json.dumps({k: gold[k] for k in keep}), encoding="utf-8")
    for page_id in keep:
        name = f"{page_id}.html.gz"
        (extraction / "scrapinghub_aeb" / "html" / name).write_bytes(
            (gold_from / "html" / name).read_bytes())
    readability = shared / "eval" / "extraction" / "readability"
    for case in sorted(p for p in readability.iterdir() if p.is_dir())[:3]:
        target = extraction / "readability" / case.name
        target.mkdir(parents=True)
        for file in case.iterdir():
            (target / file.name).write_bytes(file.read_bytes())
    events = into / "eval" / "events"
    events.mkdir(parents=True)
    for name, field, n_groups in (("ecbplus_dev.jsonl", "topic", 2),
                                  ("gva_dev.jsonl", "event", 25)):
        rows = [json.loads(line) for line in
                (shared / "eval" / "events" / name).read_text(encoding="utf-8").splitlines()]
        groups = sorted({str(r[field]) for r in rows})[:n_groups]
        (events / name).write_text("".join(
            json.dumps(r) + "\n" for r in rows if str(r[field]) in groups), encoding="utf-8")
    return extraction


def _run(argv: list[str]) -> tuple[int, str, str]:
    from flows.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _needs_shared(command: str) -> bool:
    """The evaluations read ../shared, and so do the benchmarks' texts and pages."""
    return command == "make bench" or " eval " in f" {command} "


def _run_here(command: str, work: Path, values: dict[str, str]) -> None:
    for placeholder, value in values.items():
        command = command.replace(placeholder, value)
    code, out, err = _run(shlex.split(command)[1:])
    assert code == 0, (command, err)
    assert "Traceback" not in err, (command, err)
    if " export " in command:
        assert {p.name for p in (work / "exports").iterdir()} >= {
            "events.parquet", "latest_events.parquet", "copies.parquet"}
    else:
        assert out.strip(), command
        if " query " in command:  # a header, a rule and rows
            assert len(out.strip().splitlines()) >= 3, (command, out)


@pytest.mark.slow
def test_readme_commands_run(sample_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each README command not in ELSEWHERE that needs no ../shared, as the README gives it
    (example values replaced by the demo's), from a folder holding the demo's settings and
    warehouse."""
    from warehouse.queries import run_query

    config, warehouse, _, _ = sample_run
    (tmp_path / "newsdedup.toml").write_text(config.read_text(encoding="utf-8"),
                                             encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    values = {k: str(run_query(warehouse, sql).rows[0][0]) for k, sql in PLACEHOLDERS.items()}
    here = [c for c in readme_commands() if c not in ELSEWHERE and not _needs_shared(c)]
    assert len(here) >= 5, here
    for command in here:
        _run_here(command, tmp_path, values)


@pytest.mark.slow
def test_readme_commands_on_shared_run(
    shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The evaluations as the README gives them, on ../shared cut to a few pages and events
    (laid out beside the working folder, where the README's relative paths look), and
    `make bench` as `python -m bench --smoke`."""
    from flows.commands import eval_extraction

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(eval_extraction, "DEFAULT_DATA",
                        _slice_shared(shared_dir, tmp_path / "shared"))
    monkeypatch.chdir(work)
    here = [c for c in readme_commands() if c not in ELSEWHERE and _needs_shared(c)]
    assert "make bench" in here and len(here) >= 4, here
    for command in here:
        if command == "make bench":
            _bench_smoke(tmp_path / "bench")
        else:
            _run_here(command, work, {})


def _bench_smoke(results: Path) -> None:
    """`make bench` runs `python -m bench`; here its --smoke mode, the benchmarks that need no
    Prefect server (e2e and history each start one: ~30 s apiece on 2 cores)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--only", "extraction", "grouping", "loading",
         "--results", str(results)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((results / "bench.json").read_text(encoding="utf-8"))
    assert report["smoke"] and {e["name"] for e in report["benchmarks"]} == {
        "extraction", "grouping", "loading"}
    assert all(e["comparisons"] for e in report["benchmarks"]), done.stdout[-3000:]


def test_every_readme_command_is_one_the_tools_accept() -> None:
    # The quick check, without servers or ../shared: an option renamed fails here at once.
    from flows.cli import build_parser

    for line in readme_commands():
        argv = shlex.split(line.rstrip("&").strip())
        if argv[0].endswith("newsdedup"):
            build_parser().parse_args(argv[1:])  # SystemExit on anything it does not accept
        elif argv[0] == "make":
            for target in argv[1:]:
                assert _makefile_recipe(target), line


def test_the_readme_settings_example_loads(tmp_path: Path) -> None:
    from flows.config import load_settings

    [example] = [body for lang, body in code_blocks(README.read_text(encoding="utf-8"))
                 if lang == "toml"]
    (tmp_path / "newsdedup.toml").write_text(example, encoding="utf-8")
    settings = load_settings(tmp_path / "newsdedup.toml")
    assert settings.cron == "0 * * * *"
    assert settings.warehouse_path == tmp_path / "newsdedup.lake"


def test_every_readme_example_query_returns_rows_on_the_demo_warehouse(sample_run) -> None:
    # Issue #21: two examples returned nothing on the demo. The demo is `newsdedup run` on the
    # sample with demo_config, as sample_run does (twice: a second demo adds nothing).
    from warehouse.queries import run_query

    _, warehouse, _, _ = sample_run
    examples = [
        sql for doc in (README, REPO / "docs" / "queries.md")
        for sql in re.findall(r"```sql\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S)
    ]
    assert len(examples) >= 8
    for sql in examples:
        assert run_query(warehouse, sql).rows, sql


def test_the_readme_is_a_ten_minute_read() -> None:
    # About 250 lines: the measurement narrative is in docs/benchmarks.md, the design choices in
    # docs/design.md, every setting in docs/settings.md, more queries in docs/queries.md.
    n_lines = len(README.read_text(encoding="utf-8").splitlines())
    assert n_lines <= 260, (
        f"README.md has {n_lines} lines: keep it a newcomer's ten-minute read (about 250) and"
        " move the detail to docs/, linked from the README")


def test_every_setting_is_documented() -> None:
    # docs/settings.md is where the README sends a user for the keys: it lists every one.
    from dataclasses import fields

    from extract.policy import FetchPolicy

    text = (REPO / "docs" / "settings.md").read_text(encoding="utf-8")
    keys = [f.name for f in fields(FetchPolicy)] + [
        "path", "keep_days", "workers", "timeout_s", "executor", "dask_address", "open_days",
        "lsh_storage", "redis_url", "cron", "timezone", "feed", "sitemap", "urls", "url_file",
        "directory", "warc"]
    assert not [k for k in keys if not re.search(rf"[` ]{k}[` ]", text)]
