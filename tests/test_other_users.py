"""A user who cannot write where mam would go: the built pyz run as another uid, as on a shared
machine, gets a documented exit code and a workspace as it was, never exit 1.

The tests run as root (as CI does) and drop to ``nobody`` with util-linux's ``setpriv``; the pyz
and the interpreter are ones that user can read (Debian's /usr/bin/python3, a copy of the pyz
in a world-readable directory).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from workspaces import tree

pytestmark = pytest.mark.pyz

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A world-traversable directory (pytest's tmp_path is private to root)."""
    if os.geteuid() != 0:
        pytest.fail("these tests switch users and must run as root, as CI does")
    path = Path(tempfile.mkdtemp(prefix="mam-other-user-"))
    path.chmod(0o755)
    shutil.copyfile(ROOT / "dist" / "mam-install.pyz", path / "mam-install.pyz")
    home = path / "home"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    yield path
    shutil.rmtree(path)


def as_nobody(shared: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(shared / "home"), "LANG": "C.UTF-8"}
    argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    argv += [SYSTEM_PYTHON, str(shared / "mam-install.pyz"), *map(str, args)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)


def test_a_workspace_root_this_user_cannot_write_is_exit_3_naming_the_owner(shared_dir):
    ws = shared_dir / "ws"
    ws.mkdir(mode=0o755)  # root's, and only readable by nobody
    (ws / "README.md").write_text("root's project\n")
    before = tree(ws)
    done = as_nobody(shared_dir, "install", "-y", "--no-host", "--workspace", ws)
    assert done.returncode == 3, done.stderr
    assert f"{ws} is not writable by this user" in done.stderr
    assert "debug log" in done.stderr
    assert tree(ws) == before


def test_a_directory_of_another_users_in_the_workspace_is_exit_7_and_nothing_stays(shared_dir):
    ws = shared_dir / "ws"
    ws.mkdir()
    os.chown(ws, NOBODY, NOBODY)
    (ws / ".agents").mkdir(mode=0o755)  # root's: nobody cannot create skills/ in it
    before = tree(ws)
    done = as_nobody(shared_dir, "install", "-y", "--no-host", "--workspace", ws)
    assert done.returncode == 7, done.stderr
    assert "Permission denied" in done.stderr and "was undone" in done.stderr
    assert tree(ws) == before
    assert not (ws / ".mam").exists()  # the failed first run's state dir went with it
