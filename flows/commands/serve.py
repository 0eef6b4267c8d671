"""`newsdedup serve [--config FILE]`: register the ingestion flow as a Prefect deployment with
the cron of `[schedule]` and run its schedule, against a running Prefect server. One run at a
time: the deployment's concurrency limit is 1 and a run due while another is still going is
cancelled (the next one picks up everything new anyway), rather than queued behind it.

`--start-server` (what `make serve` uses) first starts `prefect server start` on 127.0.0.1 when
no server answers, then serves in a child process that has PREFECT_API_URL set; `--sample`
schedules the bundled sample, served on 127.0.0.1, for a newcomer without a settings file."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from flows.config import DEFAULT_CONFIG, ConfigError, Settings, load_settings

DEPLOYMENT_NAME = "newsdedup"
FLOW_NAME = "newsdedup-ingest"
SAMPLE_CRON = "*/10 * * * *"  # the sample changes never; every 10 minutes shows the schedule


def add_parser(sub: Any, name: str) -> None:
    parser = sub.add_parser(
        name, help="register the scheduled deployment and run its schedule (needs a Prefect server)"
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="settings file (default ./newsdedup.toml)"
    )
    parser.add_argument("--name", default=DEPLOYMENT_NAME, help="deployment name")
    parser.add_argument(
        "--start-server", action="store_true",
        help="start a local Prefect server on 127.0.0.1 first when none answers",
    )
    parser.add_argument(
        "--sample", action="store_true",
        help="schedule the bundled sample (served on 127.0.0.1) instead of a settings file",
    )
    parser.set_defaults(handler=run)


def _api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value() or None


def _child_argv(args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-m", "flows.cli", "serve", "--name", args.name]
    if args.config:
        argv += ["--config", str(args.config)]
    if args.sample:
        argv.append("--sample")
    return argv


def _serve_with_server(args: argparse.Namespace) -> int:
    from flows import server

    api = _api_url() or server.api_url(server.DEFAULT_PORT)
    process = None
    if server.is_healthy(api):
        print(f"Prefect server already running at {api}")
    else:
        if not api.startswith("http://127.0.0.1:"):
            print(f"newsdedup serve: no Prefect server answers at {api}; start it, or unset "
                  "PREFECT_API_URL to have one started on 127.0.0.1", file=sys.stderr)
            return 2
        port = int(api.split(":")[2].split("/")[0])
        log = Path(".prefect", "server.log").resolve()  # .prefect/ is git-ignored
        log.parent.mkdir(exist_ok=True)
        print(f"starting a Prefect server on 127.0.0.1:{port} (log: {log}) ...", flush=True)
        process = server.start_server(port, log_path=log)
        try:
            waited = server.wait_healthy(api, process, log_path=log)
        except server.ServerError as exc:
            server.stop_server(process)
            print(f"newsdedup serve: {exc}", file=sys.stderr)
            return 1
        print(f"Prefect server healthy after {waited:.1f} s", flush=True)
    env = dict(os.environ, PREFECT_API_URL=api)
    child = subprocess.Popen(_child_argv(args), env=env)
    # SIGTERM to this process (a service manager, `kill`): pass it on, so that the child pauses
    # the schedule before the server goes. Ctrl-C reaches both through the terminal already.
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue  # the child got the same Ctrl-C; wait for it to pause and exit
    finally:
        if process is not None:
            print("stopping the Prefect server this command started", flush=True)
            server.stop_server(process)


def _sample_settings_file(directory: Path, base_url: str) -> Path:
    from flows.commands.demo import demo_config

    config = directory / "newsdedup-sample.toml"
    text = demo_config(base_url, Path("newsdedup.lake"))
    config.write_text(text + f'\n[schedule]\ncron = "{SAMPLE_CRON}"\n', encoding="utf-8")
    return config


def _first_run(api: str, name: str, wait_s: float = 120.0) -> None:
    """Start one run of the deployment as soon as `serve` has registered it, so that a user
    sees a run at once instead of at the schedule's next tick (up to 10 minutes for the
    sample's). The same API call as `prefect deployment run`; best effort: the schedule
    runs either way."""
    import httpx

    from flows.server import ui_url

    deadline = time.monotonic() + wait_s
    with httpx.Client(base_url=api.rstrip("/") + "/", timeout=10.0) as client:
        while time.monotonic() < deadline:
            try:
                answer = client.get(f"deployments/name/{FLOW_NAME}/{name}")
                if answer.status_code == 200:
                    deployment_id = answer.json()["id"]
                    run = client.post(f"deployments/{deployment_id}/create_flow_run", json={})
                    run.raise_for_status()
                    print(f"first run started: {ui_url(api)}/runs/flow-run/{run.json()['id']}",
                          flush=True)
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(1.0)
    print(f"no first run: the deployment was not registered within {wait_s:.0f} s; the"
          " schedule runs it", flush=True)


def serve_settings(settings: Settings, config_path: Path, name: str = DEPLOYMENT_NAME) -> None:
    """Register the deployment and run its schedule until interrupted (blocks)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.cli import command
    from flows.pipeline import ingest
    from flows.server import ui_url

    assert settings.cron is not None
    api = _api_url() or ""
    print(f"deployment {FLOW_NAME}/{name}: cron {settings.cron!r} ({settings.timezone}),"
          f" settings {config_path}")
    print(f"Prefect UI: {ui_url(api)}  (runs: {ui_url(api)}/runs, deployments:"
          f" {ui_url(api)}/deployments)")
    print(f"run it again: {command('prefect')} deployment run '{FLOW_NAME}/{name}'", flush=True)
    threading.Thread(target=_first_run, args=(api, name), name="first-run", daemon=True).start()
    ingest.serve(
        name=name,
        schedules=[Cron(settings.cron, timezone=settings.timezone)],
        parameters={"config_path": str(config_path)},
        # Deployment-wide: at most one run, even with several `serve` processes; a run due
        # while one is going is cancelled, not queued (a queue would grow without bound when
        # runs take longer than the interval).
        global_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
        limit=1,  # and this process runs one flow run at a time
        tags=["newsdedup"],
        description="Discover, fetch, extract, group and load every configured source once.",
        # By module path, so that the runner finds the flow from any working directory.
        entrypoint_type=EntrypointType.MODULE_PATH,
        pause_on_shutdown=True,
    )


def run(args: argparse.Namespace) -> int:
    if args.start_server:
        return _serve_with_server(args)
    if not _api_url():
        print(
            "newsdedup serve: schedules need a running Prefect server (the temporary one a"
            " single run starts cannot run them). Either run `make serve` (starts one on"
            " 127.0.0.1), or start one with `prefect server start --host 127.0.0.1` and"
            " `export PREFECT_API_URL=http://127.0.0.1:4200/api`.",
            file=sys.stderr,
        )
        return 2
    if args.sample:
        from flows.sampleserver import SamplePortBusy, sample_site

        # The settings file outlives this process (in the git-ignored .prefect/): a run that
        # starts while serve is shutting down then finds its settings, not a crash.
        directory = Path(".prefect").resolve()
        directory.mkdir(exist_ok=True)
        try:
            with sample_site() as base_url:
                config = _sample_settings_file(directory, base_url)
                serve_settings(load_settings(config), config, args.name)
        except SamplePortBusy as exc:
            print(f"newsdedup serve: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"newsdedup serve: {exc}", file=sys.stderr)
        return 2
    if settings.cron is None:
        print(
            f"newsdedup serve: {args.config or DEFAULT_CONFIG} has no schedule; add e.g.\n\n"
            '[schedule]\ncron = "0 * * * *"   # every hour\ntimezone = "UTC"',
            file=sys.stderr,
        )
        return 2
    serve_settings(settings, (args.config or DEFAULT_CONFIG).resolve(), args.name)
    return 0
