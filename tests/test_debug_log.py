"""The debug log: where it lives (platformdirs' answer, worked out without importing it), how it
rotates (RotatingFileHandler's rule, without importing logging), and that it never fails a run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import cli
from mam_install import _debug_log
from platformdirs.macos import MacOS
from platformdirs.unix import Unix
from workspaces import pinned

UNIX_LOG = Unix("mam", appauthor=False)
MAC_LOG = MacOS("mam", appauthor=False)


@pytest.mark.parametrize("state_home", [None, "", "  ", "/srv/state", "relative/state"])
def test_the_linux_log_dir_is_platformdirs_user_log_dir(monkeypatch, state_home):
    if state_home is None:
        monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_STATE_HOME", state_home)
    assert _debug_log.platform_log_dir("linux") == UNIX_LOG.user_log_dir
    import platformdirs

    if sys.platform == "linux":
        assert _debug_log.platform_log_dir() == platformdirs.user_log_dir("mam", appauthor=False)


def test_the_macos_log_dir_is_platformdirs_user_log_dir(monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", "/srv/state")  # macOS ignores it, and so do we
    monkeypatch.setattr(sys, "platform", "darwin")
    assert _debug_log.platform_log_dir() == MAC_LOG.user_log_dir
    assert _debug_log.log_path() == Path(MAC_LOG.user_log_dir) / "mam-install.log"


def test_with_no_home_the_log_goes_to_a_private_temp_dir_not_to_a_tilde_dir(monkeypatch):
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)  # HOME unset, no passwd entry
    monkeypatch.setattr(_debug_log, "_private_dir", None)
    path = _debug_log.log_path()
    assert path.is_absolute() and path.parent.name.startswith("mam-install-log-")
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert _debug_log.log_files() == []


def test_importing_and_writing_the_log_imports_neither_logging_nor_platformdirs(tmp_path):
    code = (
        "import sys; from mam_install import _debug_log; "
        "print(_debug_log.write_run(['a line'], ['status'])); "
        "print('logging' in sys.modules, 'platformdirs' in sys.modules)"
    )
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path),
           "PYTHONPATH": str(Path(__file__).parents[1] / "installer")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == [str(tmp_path / "mam/log/mam-install.log"), "False False"]


def test_the_log_rotates_between_runs_into_three_backups(tmp_path, monkeypatch):
    monkeypatch.setattr(_debug_log, "MAX_BYTES", 300)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    for n in range(40):
        lines = [f"run {n} line {i}" for i in range(n % 5 + 1)]
        assert _debug_log.write_run(lines, [f"argv{n}"]) == tmp_path / "mam/log/mam-install.log"
    logs = tmp_path / "mam/log"
    names = sorted(p.name for p in logs.iterdir())
    assert names == ["mam-install.log", *(f"mam-install.log.{n}" for n in (1, 2, 3))]
    texts = [(logs / name).read_text() for name in reversed(names)]  # oldest first
    for text in texts:
        assert text.startswith("==== ") and len(text.encode()) < 300
    runs = [int(line.split()[1]) for text in texts for line in text.splitlines()
            if line.startswith("run ") and line.endswith(" line 0")]
    assert runs == list(range(runs[0], 40)) and runs[0] > 0  # in order, the oldest dropped
    assert sorted(_debug_log.log_files()) == sorted(logs / name for name in names)


def test_a_run_larger_than_the_limit_gets_a_file_of_its_own(tmp_path, monkeypatch):
    monkeypatch.setattr(_debug_log, "MAX_BYTES", 100)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    path = _debug_log.write_run(["x" * 300], ["first"])
    assert path is not None and path.read_text().startswith("==== ")
    assert "x" * 300 in path.read_text()
    _debug_log.write_run(["second"], ["second"])
    assert path.read_text().startswith("==== ") and "argv: ['second']" in path.read_text()
    assert "x" * 300 in path.with_name("mam-install.log.1").read_text()


def test_a_path_that_is_not_utf_8_is_logged_backslash_escaped(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    path = _debug_log.write_run(["placed /w/caf\u00e9/\udcff"], ["install"])
    assert path is not None
    assert path.read_bytes().endswith(b"placed /w/caf\xc3\xa9/\\udcff\n")


def test_an_unwritable_log_dir_prints_nothing_and_the_command_succeeds(tmp_path, monkeypatch,
                                                                       releases):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker / "state"))  # mkdir cannot go through it
    ws = tmp_path / "ws"
    ws.mkdir()
    done = cli("install", "-y", "--no-host", "--workspace", ws, *pinned(releases["1.0.0"]))
    assert done.exit_code == 0, done.stderr
    assert "Traceback" not in done.stderr and "debug log" not in done.stderr
    assert (ws / ".mam/install-receipt.json").is_file()
    assert _debug_log.write_run(["line"], []) is None


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_prints_no_traceback_and_the_command_succeeds(tmp_path, monkeypatch,
                                                                  releases):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    log_dir = tmp_path / "state/mam/log"
    log_dir.mkdir(parents=True)
    (log_dir / "mam-install.log").symlink_to("/dev/full")  # every write: ENOSPC
    ws = tmp_path / "ws"
    ws.mkdir()
    done = cli("install", "-y", "--no-host", "--workspace", ws, *pinned(releases["1.0.0"]))
    assert done.exit_code == 0, done.stderr
    assert "Traceback" not in done.stderr and "No space" not in done.stderr
    failed = cli("status", "--workspace", tmp_path / "nowhere")
    assert failed.exit_code == 6 and "Traceback" not in failed.stderr
    assert (log_dir / "mam-install.log").is_symlink()  # /dev/full is never rotated away
