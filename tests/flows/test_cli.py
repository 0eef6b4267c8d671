from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli import COMMANDS, build_parser, main


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
