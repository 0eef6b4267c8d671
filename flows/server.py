"""A local Prefect server on 127.0.0.1, for `make serve`, the acceptance tests and the
screenshot script. Schedules need a real `prefect server start`: the temporary server a lone
`newsdedup run` starts lives only as long as that run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_PORT = 4200  # Prefect's own default, so `prefect` commands find it without settings
# Measured here: 15-45 s from launch to a healthy /api/health on 2 loaded cores (migrations on
# a fresh database are most of it); 180 s leaves room for a busy CI machine.
STARTUP_TIMEOUT_S = 180.0


class ServerError(RuntimeError):
    """A Prefect server that did not start; the message says where its log is."""


def api_url(port: int, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{port}/api"


def ui_url(api: str) -> str:
    """The UI's address for an API URL (the server serves both)."""
    return api.rstrip("/").removesuffix("/api")


def is_healthy(api: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api.rstrip('/')}/health", timeout=timeout_s) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prefect_executable() -> str:
    """The `prefect` script beside this interpreter (the venv's), else the one on PATH."""
    candidate = Path(sys.executable).with_name("prefect")
    return str(candidate) if candidate.exists() else "prefect"


def start_server(
    port: int = DEFAULT_PORT,
    home: Path | None = None,
    log_path: Path | None = None,
    host: str = "127.0.0.1",
) -> subprocess.Popen[bytes]:
    """Launch `prefect server start` in the background (its own process group, so that
    stop_server ends the server and its workers together). Does not wait for it."""
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)  # the server must not try to talk to another server
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    # UI_API_URL: the browser talks to this address; the default is fine on 127.0.0.1.
    env["PREFECT_UI_API_URL"] = api_url(port, host)
    if home is not None:
        env["PREFECT_HOME"] = str(home)
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - the child's
    try:
        return subprocess.Popen(
            [prefect_executable(), "server", "start", "--host", host, "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        if log_path:
            log.close()  # type: ignore[union-attr]


def wait_healthy(
    api: str,
    process: subprocess.Popen[bytes] | None = None,
    timeout_s: float = STARTUP_TIMEOUT_S,
    log_path: Path | None = None,
) -> float:
    """Poll /api/health until it answers; returns the seconds waited. Raises ServerError when
    the process exits first or the time runs out."""
    t0 = time.monotonic()
    where = f" (log: {log_path})" if log_path else ""
    while time.monotonic() - t0 < timeout_s:
        if is_healthy(api):
            return time.monotonic() - t0
        if process is not None and process.poll() is not None:
            raise ServerError(f"prefect server exited with code {process.returncode}{where}")
        time.sleep(0.5)
    raise ServerError(f"prefect server at {api} not healthy after {timeout_s:.0f} s{where}")


def stop_server(process: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(grace_s)
    except ProcessLookupError:
        pass


@contextmanager
def running_server(
    port: int | None = None,
    home: Path | None = None,
    log_path: Path | None = None,
    timeout_s: float = STARTUP_TIMEOUT_S,
) -> Iterator[str]:
    """A Prefect server on 127.0.0.1 for the block; yields its API URL."""
    port = port or free_port()
    api = api_url(port)
    process = start_server(port, home=home, log_path=log_path)
    try:
        wait_healthy(api, process, timeout_s, log_path)
        yield api
    finally:
        stop_server(process)
