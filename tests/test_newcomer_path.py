"""The newcomer's path (issue #21): a run whose sources fail says which, why and how to fix
it, and exits non-zero when nothing worked; from any folder, with a fresh PREFECT_HOME, the CLI
brings its own Prefect settings (no telemetry, a long server start-up)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from extract.records import FetchedPage, Reason
from flows.cli import main
from flows.failures import describe, failed_sources
from flows.sampleserver import SAMPLE_DIR, serve_directory

REPO = Path(__file__).resolve().parents[1]


def page(source: str, status: Reason, url: str = "http://x.org/", detail: str = "") -> FetchedPage:
    from datetime import UTC, datetime

    return FetchedPage(url=url, final_url=url, source=source, status=status,
                       fetched_at=datetime(2025, 1, 1, tzinfo=UTC), detail=detail)


def test_a_source_fails_only_when_nothing_of_it_worked() -> None:
    pages = [
        page("dead", Reason.BLOCKED_ADDRESS, "http://127.0.0.1/feed.xml", "127.0.0.1 is loopback"),
        page("mixed", Reason.TIMEOUT), page("mixed", Reason.OK),
        page("quiet", Reason.NOT_MODIFIED),
        page("dead", Reason.BAD_URL),
    ]
    [failure] = failed_sources(["dead", "mixed", "quiet", "empty"], pages)
    assert (failure.source, failure.url, failure.n_failed) == (
        "dead", "http://127.0.0.1/feed.xml", 2)
    assert "allow_private_networks = true" in failure.fix
    text = "\n".join(describe([failure], 4))
    assert "1 of 4 sources failed" in text and "127.0.0.1 is loopback" in text


# The flow tests below read the CLI's output through io.StringIO, not capsys: Prefect's console
# log handler keeps the sys.stderr it first saw, and a capsys stream is closed when its test
# ends, so every later flow run's log line failed ("I/O operation on closed file").


def captured(fn: Callable[[], int]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = fn()
    return code, out.getvalue(), err.getvalue()


def test_every_source_failing_exits_non_zero_with_each_fix(
    prefect_harness: None, tmp_path: Path
) -> None:
    with serve_directory(SAMPLE_DIR) as base_url:
        config = tmp_path / "my.toml"
        config.write_text(
            "[warehouse]\npath = \"w.duckdb\"\n[fetch]\nallow_private_networks = true\n"
            "per_host_delay_s = 0\n"
            f"[[sources]]\nname = \"gone\"\nfeed = \"{base_url}/no-such-feed.xml\"\n"
            "[[sources]]\nname = \"typo\"\nfeed = \"example.org/rss.xml\"\n"
            "[[sources]]\nname = \"disk\"\ndirectory = \"no-such-dir\"\n"
        )
        code, out, _ = captured(lambda: main(["run", "--config", str(config)]))
    assert code == 1
    assert "every source failed" in out
    assert f"gone: http_error {base_url}/no-such-feed.xml" in out
    assert "typo: connect_error" in out and "example.org/rss.xml" in out
    assert "disk: bad_url" in out and "no directory" in out
    assert out.count("fix: ") == 3 and "correct the path" in out


@pytest.mark.slow
def test_from_a_users_folder_a_blocked_feed_is_explained_and_no_telemetry(tmp_path: Path) -> None:
    # The acceptance line of #21: a fresh PREFECT_HOME, a folder outside the repository, one
    # source on a loopback address without allow_private_networks.
    (tmp_path / "my.toml").write_text(
        '[[sources]]\nname = "local"\nfeed = "http://127.0.0.1:9/feed.xml"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--config", "my.toml"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    both = done.stdout + done.stderr
    assert done.returncode == 1, both
    assert "local: blocked_address http://127.0.0.1:9/feed.xml" in done.stdout
    assert "fix: the address is loopback" in done.stdout
    assert "set [fetch] allow_private_networks = true" in done.stdout
    assert "telemetry" not in both.lower() and "Traceback" not in both
    # The README shows this output (wrapped at its width): it is what the command prints.
    from tests.test_readme import README, code_blocks

    [shown] = [body for lang, body in code_blocks(README.read_text(encoding="utf-8"))
               if lang == "text" and body.startswith("every source failed:")]
    assert " ".join(shown.split()) in " ".join(done.stdout.split()), done.stdout


def test_a_second_demo_adds_nothing_though_the_port_was_busy_the_first_time(
    prefect_harness: None, tmp_path: Path
) -> None:
    import socket

    from flows.sampleserver import sample_site
    from tests.extract.hostile import free_port
    from warehouse.queries import read_only, table_counts

    port, warehouse = free_port(), tmp_path / "demo.duckdb"
    demo = ["demo", "--port", str(port), "--warehouse", str(warehouse)]
    with socket.socket() as squatter:  # another program on the port, answering nothing
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        code, _, err = captured(lambda: main(demo))
    assert code == 2
    assert f"port {port} on 127.0.0.1 is in use by another program" in err
    assert "Traceback" not in err and not warehouse.exists()
    assert captured(lambda: main(demo))[0] == 0
    with read_only(warehouse) as con:
        first = table_counts(con)
    with sample_site(port):  # another demo's sample server holds the port: used as it is
        assert captured(lambda: main(demo))[0] == 0
    with read_only(warehouse) as con:
        second = table_counts(con)
    assert first["articles"] > 0
    assert {k: second[k] for k in ("articles", "events")} == {
        k: first[k] for k in ("articles", "events")}


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_fetch_stops_the_run_within_seconds(tmp_path: Path, signum: int) -> None:
    # Issue #21, item 3: 200 pages at per_host_delay_s = 0.3 took 55 s to notice a SIGTERM
    # (Ctrl-C, SIGINT, is handled the same way).
    import time

    from warehouse.store import Warehouse

    site = tmp_path / "site"
    site.mkdir()
    items = "".join(f"<item><title>P{n}</title><link>__BASE_URL__/p{n}.html</link></item>"
                    for n in range(200))
    (site / "feed.xml").write_text(f'<rss version="2.0"><channel><title>t</title>{items}'
                                   "</channel></rss>")
    for n in range(200):
        (site / f"p{n}.html").write_text(f"<html><body><p>Page {n}.</p></body></html>")
    with serve_directory(site) as base_url:
        (tmp_path / "my.toml").write_text(
            '[warehouse]\npath = "w.lake"\n[fetch]\nallow_private_networks = true\n'
            f'per_host_delay_s = 0.3\n[[sources]]\nname = "slow"\nfeed = "{base_url}/feed.xml"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PYTHONPATH=str(REPO))
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "run", "--config", "my.toml"], cwd=tmp_path,
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # until discovery is done and fetching under way
            lines.append(line)
            if "200 targets" in line:
                break
        else:
            pytest.fail("".join(lines))
        time.sleep(2.0)
        t0 = time.monotonic()
        proc.send_signal(signum)
        rest, _ = proc.communicate(timeout=60)
        stopped_in = time.monotonic() - t0
    assert proc.returncode == 128 + signum, "".join(lines) + rest
    assert stopped_in < 15, stopped_in
    assert f"{signal.Signals(signum).name}: stopping now" in rest
    assert "recorded as interrupted" in rest
    # Recorded, not published: the writer's view of the lake has it.
    with Warehouse.open(tmp_path / "w.lake", publish=False) as wh:
        assert wh.con.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]


def test_a_run_while_another_holds_the_warehouse_is_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from warehouse.store import hold_run_lock

    config = tmp_path / "my.toml"
    config.write_text('[warehouse]\npath = "w.duckdb"\n[[sources]]\nname = "x"\n'
                      'feed = "https://example.org/rss.xml"\n')
    with hold_run_lock(tmp_path / "w.duckdb"):
        assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "is held by another process" in err and "Traceback" not in err


def test_what_a_run_leaves_beside_the_warehouse_is_git_ignored(tmp_path: Path) -> None:
    # Issue #21, item 14: the lock and writer files showed up in `git status`.
    names = ["newsdedup.duckdb", "newsdedup.duckdb.wal", "newsdedup.duckdb.writer",
             "newsdedup.duckdb.writer.wal", "newsdedup.duckdb.lock", "newsdedup.duckdb.run.lock",
             ".newsdedup.duckdb.4242.publish-tmp", "data/.out.jsonl.partial-4242"]
    done = subprocess.run(["git", "check-ignore", "--no-index", *names], cwd=REPO,
                          capture_output=True, text=True)
    if done.returncode == 128:
        pytest.skip(f"git cannot check here: {done.stderr.strip()}")
    assert sorted(done.stdout.split()) == sorted(names)


def test_hints_name_a_command_the_shell_will_find(monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue #21, item 14: `try: newsdedup query ...` failed in a shell without .venv/bin on PATH.
    from flows.cli import command

    here = Path(sys.executable).parent / "newsdedup"
    if not here.exists():
        pytest.skip(f"no {here}: the package is not installed in this interpreter's bin")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert Path(command()).resolve() == here.resolve()
    monkeypatch.setenv("PATH", f"{here.parent}:/usr/bin:/bin")
    assert command() == "newsdedup"
