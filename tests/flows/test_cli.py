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
