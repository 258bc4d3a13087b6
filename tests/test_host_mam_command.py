"""The host install lays `mam` down in the per-user bin dir, where it runs with nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mam_install._runner import RecordingRunner
from test_cmd_host import RELOAD, install, uninstall
from test_host_planner import fake_host, host_release_fixture, point_home_at  # noqa: F401


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = point_home_at(tmp_path / "home", monkeypatch)
    (home / ".local/share").mkdir(parents=True)
    return home


@pytest.fixture
def runner() -> RecordingRunner:
    runner = RecordingRunner()
    runner.answer(RELOAD)
    return runner


def test_mam_is_installed_with_its_package_and_runs_from_the_bin_dir(host_release, home, runner):
    host = fake_host(home)
    install(host_release["1.0.0"], host, runner)
    bin_dir = home / ".local/share/mam/bin"
    mam = bin_dir / "mam"
    assert mam.is_file() and mam.stat().st_mode & 0o111
    assert (bin_dir / "mam_fleet" / "roster.schema.json").is_file()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(home / ".config")}
    done = subprocess.run([sys.executable, "-I", str(mam), "fleet", "init", "--json"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["roster"] == str(home / ".config/mam/fleet.json")
    assert not list(bin_dir.rglob("__pycache__"))  # nothing left in the bin dir
    uninstall(host, runner)
    assert not bin_dir.exists()
    assert (home / ".config/mam/fleet.json").is_file()  # the user's roster stays
