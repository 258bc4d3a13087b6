"""A failure in the middle of a run (a read-only directory, a full disk) undoes the whole run."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from clirun import cli
from workspaces import V1_FILES, V2_FILES, make_release, pinned, tree


@contextmanager
def unwritable(directory: Path) -> Iterator[None]:
    """No new entries in ``directory``, even for root (chattr +i), restored afterwards."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a directory unwritable")
    done = subprocess.run(["chattr", "+i", str(directory)], capture_output=True)
    if done.returncode:
        pytest.skip(f"chattr +i is not supported here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


def test_unwritable_directory_mid_upgrade_rolls_back_to_v1_exactly(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    assert cli("install", "-y", "--workspace", ws, *pinned(releases["1.0.0"])).exit_code == 0
    (ws / "AGENT.md").write_bytes(b"mine\n")
    before = tree(ws)
    receipt_before = (ws / ".mam/install-receipt.json").read_bytes()
    # tmux/send-message.sh is replaced after lib.sh and the new mqtt/ files are already done.
    with unwritable(ws / ".agents/skills/tmux"):
        result = cli("upgrade", "-y", "--workspace", ws, *pinned(releases["2.0.0"]))
    assert result.exit_code == 7, result.stderr
    assert "undone" in result.stderr
    assert tree(ws) == before
    assert (ws / ".mam/install-receipt.json").read_bytes() == receipt_before
    assert cli("status", "--workspace", ws).exit_code == 4  # AGENT.md is still the user's edit


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_mid_upgrade_rolls_back_to_v1_exactly(tmp_path, small_disk, releases):
    ws = small_disk / "ws"
    ws.mkdir()
    assert cli("install", "-y", "--workspace", ws, *pinned(releases["1.0.0"])).exit_code == 0
    (ws / ".env.example").write_bytes(b"edited\n")
    before = tree(ws)
    # v2's AGENT.md (last in the plan) is larger than the space left on the disk.
    big = dict(V2_FILES)
    big["workspace/AGENT.md"] = (b"x" * 200_000, 0o644)
    release = make_release(tmp_path, big, "2.0.0")
    filler = small_disk / "filler"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler.write_bytes(b"\0" * max(free - 48 * 1024, 0))
    result = cli("upgrade", "-y", "--workspace", ws, *pinned(release))
    assert result.exit_code == 7, result.stderr
    assert "No space left" in result.stderr
    assert tree(ws) == before
    filler.unlink()
    status = cli("--json", "status", "--workspace", ws)
    assert status.scope()["payload_version"] == "1.0.0"


def test_uninstall_continues_past_a_failure_and_exits_8_keeping_the_rest_in_the_receipt(
    tmp_path, releases
):
    ws = tmp_path / "ws"
    ws.mkdir()
    assert (
        cli("install", "-y", "--no-host", "--workspace", ws, *pinned(releases["1.0.0"])).exit_code
        == 0
    )
    with unwritable(ws / ".agents/skills/tmux"):
        first = cli("uninstall", "--workspace", ws)
        assert first.exit_code == 8, first.stderr
        assert "send-message.sh" in first.stderr
        assert tree(ws) == {
            ".agents": "dir",
            ".agents/skills": "dir",
            ".agents/skills/tmux": "dir",
            ".agents/skills/tmux/send-message.sh": V1_FILES[
                "workspace/.agents/skills/tmux/send-message.sh"
            ][0],
        }
        status = cli("--json", "status", "--workspace", ws)
        assert status.scope()["states"] == {".agents/skills/tmux/send-message.sh": "pristine"}
    again = cli("uninstall", "--workspace", ws)
    assert again.exit_code == 0, again.stderr
    assert list(ws.iterdir()) == []
