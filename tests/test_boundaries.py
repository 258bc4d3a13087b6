"""Failures outside the workspace get a documented exit code before anything is touched, and
the lock holds when an uninstall removes `.mam/` under a waiting install."""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from pathlib import Path

import pytest
from clirun import cli
from mam_install.engine._lock import lock_for
from mam_install.engine._transaction import remove_state_dir
from mam_install.machine._layout import workspace_layout
from subproc import command, environment
from workspaces import V1_FILES, expected_tree, pinned, tree


def no_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """HOME unset and no passwd entry for this uid, as in a container run with ``--user N``."""
    for var in ("HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)

    def missing(uid: int) -> pwd.struct_passwd:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", missing)
    assert os.path.expanduser("~") == "~"


def test_without_a_home_the_host_scope_is_refused_before_the_workspace_is_touched(
    tmp_path, releases, monkeypatch
):
    here = tmp_path / "cwd"
    here.mkdir()
    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.chdir(here)
    no_home(monkeypatch)
    done = cli("--json", "install", "-y", "--workspace", ws, *pinned(releases["1.0.0"]))
    assert done.exit_code == 3, done.stderr
    message = done.json()["error"]
    assert "HOME is not set" in message and "--no-host" in message
    assert list(ws.iterdir()) == [] and list(here.iterdir()) == []  # never a ./~ tree
    log = Path(done.json()["log"])
    assert log.is_absolute() and here not in log.parents and log.is_file()
    only_ws = cli("install", "-y", "--no-host", "--workspace", ws, *pinned(releases["1.0.0"]))
    assert only_ws.exit_code == 0, only_ws.stderr
    assert tree(ws) == expected_tree(V1_FILES) and list(here.iterdir()) == []


def test_an_unwritable_data_dir_is_exit_3_naming_no_host_and_xdg_data_home(
    tmp_path, releases, monkeypatch
):
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker / "share"))
    ws = tmp_path / "ws"
    ws.mkdir()
    done = cli("--json", "install", "-y", "--workspace", ws, *pinned(releases["1.0.0"]))
    assert done.exit_code == 3, done.stderr
    assert "XDG_DATA_HOME" in done.json()["error"] and "--no-host" in done.json()["error"]
    assert list(ws.iterdir()) == []


def test_a_workspace_below_a_file_is_exit_4_and_creates_nothing(tmp_path, releases):
    (tmp_path / "a-file").write_bytes(b"x")
    done = cli("--json", "install", "-y", "--no-host", "--workspace", tmp_path / "a-file/sub",
               *pinned(releases["1.0.0"]))
    assert done.exit_code == 4, done.stderr
    assert "is not a directory" in done.json()["error"]
    assert (tmp_path / "a-file").read_bytes() == b"x"


def test_a_workspace_path_that_is_not_utf8_installs_logs_and_reports(tmp_path, releases):
    ws = tmp_path / os.fsdecode(b"caf\xe9")
    ws.mkdir()
    done = cli("install", "-y", "--no-host", "--workspace", ws, *pinned(releases["1.0.0"]))
    assert done.exit_code == 0, done.stderr
    assert tree(ws) == expected_tree(V1_FILES)
    status = cli("--json", "status", "--workspace", ws)
    assert status.exit_code == 0 and set(status.scope()["states"].values()) == {"pristine"}
    assert cli("status", "--workspace", ws).exit_code == 0
    log = Path(os.environ["XDG_STATE_HOME"]) / "mam/log/mam-install.log"
    assert "caf\\udce9" in log.read_text(encoding="utf-8")


def _holds_open(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) == str(path) for fd in fds.iterdir())
    except OSError:
        return False


def _wait_until_waiting(proc: subprocess.Popen[str], path: Path) -> None:
    """Until ``proc`` has the lock file open (it is then waiting for the lock), with a bound."""
    deadline = time.monotonic() + 60
    while not _holds_open(proc.pid, path):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never reached the lock"
        time.sleep(0.02)


def _start(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(command(*args), env=environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_an_install_waiting_while_the_state_dir_is_removed_takes_the_lock_where_it_now_is(
    tmp_path, releases
):
    ws = tmp_path / "ws"
    ws.mkdir()
    install = ("install", "-y", "--no-host", "--workspace", ws, *pinned(releases["1.0.0"]))
    assert cli(*install).exit_code == 0
    layout = workspace_layout(ws)
    with lock_for(layout.lock, timeout=5):
        waiting = _start(*install, "--lock-timeout", "60")
        _wait_until_waiting(waiting, layout.lock)
        remove_state_dir(layout)  # what an uninstall does last, under this very lock
    _out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert (ws / ".mam/install-receipt.json").is_file() and tree(ws) == expected_tree(V1_FILES)


def test_an_install_waiting_beside_an_uninstall_ends_with_0_or_9_never_1_or_4(
    tmp_path, releases
):
    ws = tmp_path / "ws"
    ws.mkdir()
    install = ("install", "-y", "--no-host", "--workspace", ws, *pinned(releases["1.0.0"]))
    assert cli(*install).exit_code == 0
    layout = workspace_layout(ws)
    with lock_for(layout.lock, timeout=5):
        removing = _start("uninstall", "-y", "--workspace", ws, "--lock-timeout", "60")
        _wait_until_waiting(removing, layout.lock)
        installing = _start(*install, "--lock-timeout", "60")
        _wait_until_waiting(installing, layout.lock)
    _out, removed_err = removing.communicate(timeout=120)
    _out, installed_err = installing.communicate(timeout=120)
    assert removing.returncode == 0, removed_err
    assert installing.returncode in (0, 9), installed_err
