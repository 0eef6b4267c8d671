"""What a run imports before it can start: the grouping code waits until it is needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_the_flow_module_does_not_import_the_grouping_code() -> None:
    # A run's first seconds are spent importing on one core, before any page is fetched; the
    # grouping code (NumPy, SciPy, datasketch, wordfreq) is imported later, in the background.
    code = (
        "import sys, flows.pipeline, dedupe\n"
        "assert 'dedupe.grouping' not in sys.modules, 'imported at start'\n"
        "from dedupe import group, PayloadError\n"
        "assert group.__module__ == 'dedupe.grouping' and 'dedupe.grouping' in sys.modules\n"
        "assert issubclass(PayloadError, Exception)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    import dedupe

    with pytest.raises(AttributeError, match="no_such_name"):
        dedupe.no_such_name  # type: ignore[attr-defined]  # noqa: B018
