"""SIGTERM and Ctrl-C stop `newsdedup run` within seconds, leaving the warehouse as a crash
would, which it is built to survive (warehouse.store: one transaction a stage, the published
snapshot replaced only whole).

Left to Prefect and the thread pools, a signal was honoured only once fetching ended: 55 s for
200 pages at per_host_delay_s = 0.3, as every fetch thread finished its queue and the task
runner waited for it (issue #21, item 3). Stopping at once instead: say so, record the run as
interrupted through the run's own warehouse session unless a stage's transaction is open on
it (the next run would mark it anyway), end this process's children (the temporary Prefect
server, the extraction pool's fork server) and exit.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warehouse.store import Warehouse

# The run this process is in, if any: its warehouse session and run id (see `running`).
_active: list[tuple[Warehouse, str]] = []

# Seconds for recording the run as interrupted: one statement on the run's own session.
RECORD_BUDGET_S = 5.0


@contextmanager
def running(wh: Warehouse, run_id: str) -> Iterator[None]:
    """While the block runs, an interrupt records `run_id` as interrupted through `wh`, the
    writer session the run holds from start to end."""
    _active[:] = [(wh, run_id)]
    try:
        yield
    finally:
        _active.clear()


def _record_interrupted() -> str:
    if not _active:
        return ""
    wh, run_id = _active[0]
    from warehouse.store import RunCounts

    outcome = ["the next run will mark it interrupted"]

    def record() -> None:
        # Inside a stage's transaction the statement would join the stage's uncommitted work,
        # which the exit abandons: leave it to the next run, which marks the run.
        if wh.in_transaction:
            return
        try:
            wh.finish_run(run_id, datetime.now(UTC), RunCounts(), status="interrupted")
            outcome[0] = "recorded as interrupted"
        except Exception:  # noqa: BLE001 - best effort: the next run marks it
            pass

    thread = threading.Thread(target=record, daemon=True)
    thread.start()
    thread.join(RECORD_BUDGET_S)
    return f"run {run_id} {outcome[0]}"


def _children() -> list[int]:
    """This process's child processes, from /proc (empty where there is none)."""
    me, found = os.getpid(), []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if len(fields) > 1 and fields[1] == str(me):
                found.append(int(entry))
    return found


def _stop(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    print(f"\nnewsdedup: {name}: stopping now", file=sys.stderr, flush=True)
    recorded = _record_interrupted()
    for pid in _children():
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    print(f"newsdedup: stopped; {recorded + '; ' if recorded else ''}the warehouse is"
          " as a crash leaves it: the published snapshot is the last finished run's, and the"
          " next run carries on", file=sys.stderr, flush=True)
    os._exit(128 + signum)


# Set by the CLI's `stop_at_once`: a flow run inside `newsdedup run`/`demo` stops at once; one
# that a deployment's runner started keeps Prefect's own SIGTERM handling (cancellation).
_enabled: list[bool] = []


@contextmanager
def _handlers() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # signals go to main only
        yield
        return
    before = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


@contextmanager
def stop_at_once() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT end the process as `_stop` says, and so they do
    in a flow run within it (`armed`)."""
    _enabled.append(True)
    try:
        with _handlers():
            yield
    finally:
        _enabled.pop()


@contextmanager
def armed() -> Iterator[None]:
    """For the pipeline, inside the flow run: Prefect's flow engine puts its own SIGTERM
    handler in place when the run starts, so `stop_at_once`'s is put back here."""
    if not _enabled:
        yield
        return
    with _handlers():
        yield
