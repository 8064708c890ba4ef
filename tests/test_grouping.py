"""The suite's own distribution: tests marked with one ``xdist_group`` run on one worker (``--dist loadgroup``).

A cluster module starts its cluster once for its tests, and the wheel is built once, only if they do.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

GROUPED = """
import os
import pytest

pytestmark = pytest.mark.xdist_group("one")


@pytest.mark.parametrize("i", range(4))
def test_grouped(i, tmp_path_factory):
    (tmp_path_factory.getbasetemp().parent.parent / f"worker-{i}").write_text(os.environ["PYTEST_XDIST_WORKER"])
"""
OTHERS = "".join(f"def test_other_{i}():\n    pass\n\n\n" for i in range(8))


def test_tests_of_one_xdist_group_run_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    (tmp_path / "test_others.py").write_text(OTHERS)
    (tmp_path / "base").mkdir()
    command = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider",
               f"--basetemp={tmp_path / 'base' / 'run'}", "--rootdir", str(tmp_path), "-c", "/dev/null",
               str(tmp_path)]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    workers = {(tmp_path / "base" / f"worker-{i}").read_text() for i in range(4)}
    assert len(workers) == 1, f"the group ran on {sorted(workers)}: check pytest against pytest-xdist's loadgroup"
