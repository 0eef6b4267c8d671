"""`make screenshot`: headless Chromium screenshots of a newsdedup run's artifacts in the Prefect
UI, saved to docs/screenshots/.

Against the server at PREFECT_API_URL when one answers (its newest completed newsdedup-ingest
run, or --flow-run ID); otherwise a throwaway `prefect server start` on 127.0.0.1 with its own
PREFECT_HOME, on which the bundled sample is run once first.

Chromium is driven over the DevTools protocol (a websocket on 127.0.0.1) rather than with
`--screenshot`: the UI is a single-page app whose tabs are not all reachable by URL, so the
script clicks the run's "Artifacts" tab and waits for the artifacts to render.

Debian: apt-get install -y chromium
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from flows import server  # noqa: E402

OUT_DIR = REPO / "docs" / "screenshots"
WIDTH, HEIGHT = 1400, 1100
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
    "--disable-default-apps", "--mute-audio", f"--window-size={WIDTH},{HEIGHT}",
]


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("screenshot: no Chromium found; on Debian: apt-get install -y chromium")


def _post(api: str, path: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        f"{api}/{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def newest_completed_run(api: str) -> str:
    runs = _post(api, "flow_runs/filter", {
        "flows": {"name": {"any_": ["newsdedup-ingest"]}},
        "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
        "sort": "END_TIME_DESC", "limit": 1,
    })
    if not runs:
        raise SystemExit(f"screenshot: no completed newsdedup-ingest run on {api}; run"
                         " `newsdedup run` (or `make serve`) against it first")
    return str(runs[0]["id"])


def run_sample(api: str, home: Path) -> None:
    """One `newsdedup run` of the bundled sample against `api`."""
    from flows.commands.demo import demo_config
    from flows.sampleserver import SAMPLE_DIR, serve_directory

    with serve_directory(SAMPLE_DIR) as base_url:
        config = home / "newsdedup.toml"
        config.write_text(demo_config(base_url, home / "newsdedup.lake"), encoding="utf-8")
        env = dict(os.environ, PREFECT_API_URL=api, PREFECT_HOME=str(home))
        subprocess.run([sys.executable, "-m", "flows.cli", "run", "--config", str(config)],
                       cwd=REPO, env=env, check=True)


class DevTools:
    """The smallest DevTools-protocol client: one page, commands answered in order."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=64 * 1024 * 1024, open_timeout=30)
        self.next_id = 0

    def call(self, method: str, **params: Any) -> Any:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {expression}")
            time.sleep(0.5)

    def resize(self, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=height,
                  deviceScaleFactor=1, mobile=False)

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self.ws.close()


@contextmanager
def chromium(profile: Path) -> Iterator[DevTools]:
    proc = subprocess.Popen(
        [find_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("screenshot: Chromium did not start")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t["type"] == "page"]
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        tools.call("Page.enable")
        tools.resize(HEIGHT)
        try:
            yield tools
        finally:
            tools.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _click_text(text: str) -> str:
    return (
        "(() => { const el = [...document.querySelectorAll('button, a, [role=tab], li, div')]"
        f".find(e => e.children.length === 0 && e.textContent.trim() === {json.dumps(text)});"
        " if (el) { el.click(); return true; } return false; })()"
    )


def take(api: str, flow_run_id: str, out_dir: Path) -> list[Path]:
    ui = server.ui_url(api)
    out_dir.mkdir(parents=True, exist_ok=True)
    artifacts = {a["key"]: a["id"] for a in _post(api, "artifacts/filter", {
        "artifacts": {"flow_run_id": {"any_": [flow_run_id]}},
    })}
    shots: list[Path] = []
    with tempfile.TemporaryDirectory() as profile, chromium(Path(profile)) as page:
        # 1. The run's Artifacts tab: the summary, the events table and the progress bar.
        page.call("Page.navigate", url=f"{ui}/runs/flow-run/{flow_run_id}")
        page.wait_for("document.body && document.body.innerText.includes('Artifacts')")
        time.sleep(2.0)  # let the run graph draw before the tab changes the layout
        page.wait_for(_click_text("Artifacts"))
        page.wait_for("document.body.innerText.includes('newsdedup-events')")
        time.sleep(2.0)
        path = out_dir / "flow-run-artifacts.png"
        page.screenshot(path)
        shots.append(path)
        # 2. and 3. Each artifact on its own page. The UI scrolls inside its own panel, so a
        # "full page" capture would stop at the window: the window is made tall enough instead.
        for key, name, height in (("newsdedup-run-summary", "run-summary.png", 1450),
                                  ("newsdedup-events", "events-table.png", 800)):
            if key not in artifacts:
                continue
            page.resize(height)
            page.call("Page.navigate", url=f"{ui}/artifacts/artifact/{artifacts[key]}")
            page.wait_for(f"document.body && document.body.innerText.includes({json.dumps(key)})")
            time.sleep(2.0)
            path = out_dir / name
            page.screenshot(path)
            shots.append(path)
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flow-run", help="flow run id (default: the newest completed run)")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    api = os.environ.get("PREFECT_API_URL", "")
    with ExitStack() as stack:
        if not (api and server.is_healthy(api)):
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="newsdedup-ui-")))
            print("starting a throwaway Prefect server on 127.0.0.1 ...", flush=True)
            api = stack.enter_context(server.running_server(home=home, log_path=home / "log"))
            print(f"running the bundled sample against {api} ...", flush=True)
            run_sample(api, home)
        run_id = args.flow_run or newest_completed_run(api)
        for path in take(api, run_id, args.out):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
