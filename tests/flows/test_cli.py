from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli import (
    COMMANDS,
    PREFECT_DEFAULTS,
    SUMMARIES,
    build_parser,
    main,
    set_prefect_defaults,
)


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out
    assert "not yet implemented" not in out


def test_every_command_has_help() -> None:
    parser = build_parser()
    for name in COMMANDS:
        with pytest.raises(SystemExit) as info:
            parser.parse_args([name, "--help"])
        assert info.value.code == 0


def test_run_without_settings_says_how_to_write_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "no settings file" in err and "[[sources]]" in err and "make demo" in err


def test_run_refuses_a_bad_key_before_starting_prefect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[fetch]\ntimeout = 3\n[[sources]]\nname = "x"\nfeed = "http://e.org/"\n')
    assert main(["run", "--config", str(config)]) == 2
    assert "[fetch]: unknown key 'timeout'" in capsys.readouterr().err


def test_one_command_imports_only_its_own_module() -> None:
    import subprocess
    import sys

    code = ("import sys; from flows.cli import build_parser; build_parser(only='query'); "
            "print(sorted(m for m in sys.modules if m.startswith('flows.commands.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2]).stdout
    assert out.strip() == "['flows.commands.query']"


def test_a_command_parses_the_same_alone_as_in_the_whole_parser() -> None:
    argv = ["extract", "pages", "--out", "x.jsonl", "--workers", "2"]
    assert vars(build_parser(only="extract").parse_args(argv)) == vars(
        build_parser().parse_args(argv))


def test_the_help_summaries_match_each_commands_own() -> None:
    # `newsdedup --help` prints SUMMARIES without importing the commands; they must not drift.
    import argparse

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    own = {action.dest: action.help for action in sub._choices_actions}
    assert own == SUMMARIES


def test_help_imports_no_command() -> None:
    # Importing every command (Prefect, trafilatura, SciPy, DuckDB) made `--help` take 5 s.
    import subprocess
    import sys

    code = ("import sys; from flows.cli import main\ntry: main(['--help'])\nexcept SystemExit: "
            "pass\nprint(sorted(m for m in sys.modules if m.startswith(('flows.commands.', "
            "'prefect', 'trafilatura', 'duckdb'))), file=sys.stderr)")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2]).stderr
    assert err.strip() == "[]"


def test_prefect_settings_travel_with_the_cli() -> None:
    # prefect.toml applies only in the repository's folder; from a user's folder Prefect sent
    # telemetry and gave its temporary server 20 s (issue #21, item 12).
    env: dict[str, str] = {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300"}
    set_prefect_defaults(env)
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "300"  # the user's wins
    assert set(PREFECT_DEFAULTS) <= set(env)


def test_prefect_reads_the_defaults_from_any_folder(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    code = ("from flows.cli import set_prefect_defaults; set_prefect_defaults(); "
            "from prefect.settings import get_current_settings as s; c = s(); "
            "print(c.server.analytics_enabled, c.server.ephemeral.startup_timeout_seconds)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path, env=env).stdout
    assert out.split() == ["False", "120"]
