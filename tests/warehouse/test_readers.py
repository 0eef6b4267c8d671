"""While a run writes, readers in other processes query the latest published state without
error: the writer works on `<path>.writer` and publishes by atomic rename."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from warehouse.queries import NoWarehouse, run_query

SCRIPT = Path(__file__).with_name("loadscript.py")
REPO = Path(__file__).resolve().parents[2]

# Reader in a second process: prints the article count it sees at each open, one per line,
# until the file named by argv[2] exists.
READER = """
import sys
from pathlib import Path
from warehouse.queries import run_query
done = Path(sys.argv[2])
while not done.exists():
    print(run_query(sys.argv[1], "SELECT count(*) FROM articles").rows[0][0], flush=True)
"""


def test_readers_in_other_processes_query_while_a_writer_loads(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    n_batches = 6
    done = tmp_path / "done"
    writer = subprocess.Popen([sys.executable, str(SCRIPT), "churn", str(path), str(n_batches)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while True:  # the first publish
        assert writer.poll() is None, writer.communicate()[1]
        try:
            run_query(path, "SELECT 1")
            break
        except NoWarehouse:
            time.sleep(0.02)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path), str(done)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # ... and this process reads too, opening the snapshot afresh each time.
    seen_here: list[int] = []
    while writer.poll() is None:
        seen_here.append(run_query(path, "SELECT count(*) FROM articles").rows[0][0])
    done.touch()
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    _, w_err = writer.communicate()
    assert writer.returncode == 0, w_err
    seen_there = [int(line) for line in out.split()]
    for seen in (seen_here, seen_there):
        assert seen == sorted(seen), "a reader never sees the warehouse go back in time"
        assert all(n % 50 == 0 for n in seen), "a reader never sees half a batch"
    assert len(set(seen_here) | set(seen_there)) >= 3, "readers saw the loads progress"
    assert run_query(path, "SELECT count(*) FROM articles").rows == [(50 * n_batches,)]
