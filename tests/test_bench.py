"""scripts/bench.py runs end to end (in its one-round smoke mode) so that it cannot rot."""

from __future__ import annotations

import subprocess
import sys

import pytest
from workspaces import ROOT

pytestmark = pytest.mark.slow


def test_bench_smoke_prints_every_kind_of_row_with_a_verdict():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/bench.py"), "--smoke", "--python", sys.executable],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")][1:]
    names = [row.split(" | ")[0] for row in rows]
    for expected in (
        "| `--version`",
        "| fresh install, 8 files",
        "| no-op re-install, 8 files",
        "| first run (empty SHIV_ROOT), install, Python ",
        "| get-mam.py from a local server, install",
        "| sha256 of 16 MiB, streamed",
        "| install, 2,000 unrelated files",
        "| `verify`, 30 vs 8 files",
        "| `verify` peak memory, 30 vs 8 files",
    ):
        assert any(name.startswith(expected) for name in names), (expected, names)
    for row in rows:
        cells = row.strip("|").split(" | ")
        assert cells[3].endswith("x") and float(cells[3][:-1]) > 0, row
        assert cells[5].strip() in ("met", "**not met**", "—"), row
