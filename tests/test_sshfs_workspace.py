"""A workspace on a real network filesystem: sshfs (FUSE over SFTP) served by a local sftp-server.

No network is needed: sshfs's ``ssh_command`` runs ``/usr/lib/openssh/sftp-server`` directly,
so the mount is a real ``fuse.sshfs`` in the kernel's mount table, with sshfs's real semantics.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import cli
from mam_install.machine._detect import detect
from mam_install.machine._doctor import doctor_report
from workspaces import V1_FILES, V2_FILES, expected_tree, pinned, tree

from tests.payload._support import LIB_SH

SFTP_SERVER = Path("/usr/lib/openssh/sftp-server")


@pytest.fixture
def sshfs_dir(tmp_path: Path) -> Iterator[Path]:
    sshfs = shutil.which("sshfs")
    unmount = shutil.which("fusermount3") or shutil.which("fusermount")
    if sshfs is None or not SFTP_SERVER.exists() or unmount is None:
        pytest.skip("sshfs and openssh-server are not installed (apt-get install sshfs "
                    "openssh-server)")
    if not Path("/dev/fuse").exists():
        pytest.skip("/dev/fuse is missing: this machine or container has no FUSE")
    served, mount_point = tmp_path / "served", tmp_path / "mnt"
    served.mkdir()
    mount_point.mkdir()
    fake_ssh = tmp_path / "local-sftp"
    fake_ssh.write_text(f"#!/bin/sh\nexec {SFTP_SERVER}\n")
    fake_ssh.chmod(0o755)
    subprocess.run([sshfs, "-o", f"ssh_command={fake_ssh}", f"localhost:{served}",
                    str(mount_point)], check=True, capture_output=True, timeout=30)
    try:
        yield mount_point
    finally:
        subprocess.run([unmount, "-u", str(mount_point)], capture_output=True, timeout=30)


def test_the_mount_is_a_real_fuse_sshfs(sshfs_dir: Path) -> None:
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    line = next(m for m in mounts if m.split(" ")[4] == str(sshfs_dir))
    assert line.split(" - ")[1].split()[0] == "fuse.sshfs"


def test_lib_sh_and_doctor_and_the_installer_call_it_network(sshfs_dir: Path) -> None:
    ws = sshfs_dir / "ws"
    ws.mkdir()
    shell = subprocess.run(["sh", str(LIB_SH), "mam_is_network_fs", str(ws)],
                           capture_output=True, text=True, timeout=30,
                           env={"PATH": "/usr/bin:/bin"})
    assert shell.returncode == 0, shell.stderr
    host = detect(ws)
    assert host.workspace is not None
    assert (host.workspace.fs_type, host.workspace.network_fs) == ("fuse.sshfs", True)
    finding = next(f for f in doctor_report(host).findings if f.name == "workspace")
    assert "on fuse.sshfs (network)" in finding.detail
    doctor = cli("--json", "doctor", "--workspace", ws)
    assert doctor.json()["workspace"]["network_fs"] is True


def test_install_upgrade_and_uninstall_on_sshfs_under_the_exclusive_lock(
    sshfs_dir: Path, releases: dict[str, Path]
) -> None:
    ws = sshfs_dir / "ws"
    ws.mkdir()
    # A lock file held by a live run on another host: only the O_EXCL lock heeds it (flock
    # would not look at it), so a busy exit proves that is the lock taken on sshfs.
    (ws / ".mam").mkdir()
    held = ws / ".mam" / "lock.excl"
    held.write_text("another-host 1\n")
    busy = cli("install", "-y", "--no-host", "--workspace", ws, *pinned(releases["1.0.0"]),
               "--lock-timeout", "0.3")
    assert busy.exit_code == 9, busy.stderr
    assert "holds" in busy.stderr
    held.unlink()

    installed = cli("install", "-y", "--no-host", "--workspace", ws, *pinned(releases["1.0.0"]))
    assert installed.exit_code == 0, installed.stderr
    files = {k: v for k, v in tree(ws).items() if not k.startswith(".mam")}
    assert files == expected_tree(V1_FILES)
    assert not held.exists()  # released after the run
    upgraded = cli("upgrade", "-y", "--no-host", "--workspace", ws, *pinned(releases["2.0.0"]))
    assert upgraded.exit_code == 0, upgraded.stderr
    files = {k: v for k, v in tree(ws).items() if not k.startswith(".mam")}
    assert files == expected_tree(V2_FILES)
    removed = cli("uninstall", "-y", "--workspace", ws)
    assert removed.exit_code == 0, removed.stderr
    assert [p for p in os.listdir(ws) if p != ".mam"] == []
