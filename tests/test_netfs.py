"""Tests for mam_install.machine._netfs: which filesystem holds a path, and is it a network one."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mam_install._runner import RecordingRunner
from mam_install.machine import _netfs
from mam_install.machine._netfs import (
    FsInfo,
    fs_from_mountinfo,
    fs_from_statfs,
    is_network_fs,
    mnt_id_from_fdinfo,
    parse_mount_output,
    probe_filesystem,
)
from mam_install.machine._statfs import (
    FREEBSD_STATFS_VERSION,
    DarwinStatfs,
    FreeBSDStatfs,
)

DATA = Path(__file__).parent / "data" / "host"
WORKSTATION = (DATA / "mountinfo-workstation.txt").read_text()
INSTALLER = Path(__file__).resolve().parent.parent / "installer"


# --- network type names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "fs_type",
    [
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "afs",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "fuse.sshfs",
        "sshfs",
        "fuse.glusterfs",
        "fuse.ceph",
        "fuse.s3fs",
        "fuse.rclone",
        "NFS",
    ],
)
def test_network_filesystem_types_are_network(fs_type: str) -> None:
    assert is_network_fs(fs_type)


@pytest.mark.parametrize(
    "fs_type",
    [
        "ext4",
        "xfs",
        "btrfs",
        "zfs",
        "apfs",
        "tmpfs",
        "overlay",
        "fuse.lxcfs",
        "fuseblk",
        "fuse.portal",
        "fuse",
        "ufs",
        "vfat",
    ],
)
def test_local_filesystem_types_are_not_network(fs_type: str) -> None:
    assert not is_network_fs(fs_type)


# --- mountinfo, fabricated --------------------------------------------------------------------


def test_fdinfo_mount_id_is_read_from_its_line() -> None:
    text = "pos:\t0\nflags:\t012200000\nmnt_id:\t51\nino:\t2\n"
    assert mnt_id_from_fdinfo(text) == 51


def test_fdinfo_without_mount_id_gives_none() -> None:
    assert mnt_id_from_fdinfo("pos:\t0\nflags:\t02\n") is None


def test_nfs_home_is_network() -> None:
    info = fs_from_mountinfo(WORKSTATION, 51)
    assert info == FsInfo("nfs4", True, "/home", "mountinfo")


def test_sshfs_mount_below_nfs_home_is_the_sshfs_one() -> None:
    info = fs_from_mountinfo(WORKSTATION, 64)
    assert info is not None
    assert (info.fs_type, info.network, info.mount_point) == (
        "fuse.sshfs",
        True,
        "/home/alice/remote",
    )


def test_bind_mount_of_a_network_subtree_is_network() -> None:
    # /srv/projects is a bind of /export/home/alice/projects from the NFS server; by path prefix
    # it would look like it is on the local root filesystem.
    info = fs_from_mountinfo(WORKSTATION, 70)
    assert info is not None
    assert (info.fs_type, info.network, info.mount_point) == ("nfs4", True, "/srv/projects")
    prefix_guess = parse_mount_output((DATA / "mount-linux.txt").read_text(), "/srv/projects/x")
    assert prefix_guess is not None and prefix_guess.fs_type == "ext4"


def test_mount_hidden_under_a_later_mount_is_not_reported() -> None:
    # /mnt/data (nfs, id 75) is hidden by a tmpfs later mounted on /mnt (id 76): a path
    # /mnt/data/... now resolves into the tmpfs, and its mount id says so.
    info = fs_from_mountinfo(WORKSTATION, 76)
    assert info is not None
    assert (info.fs_type, info.network, info.mount_point) == ("tmpfs", False, "/mnt")


def test_mount_point_with_a_space_is_decoded() -> None:
    info = fs_from_mountinfo(WORKSTATION, 81)
    assert info == FsInfo("cifs", True, "/srv/team share", "mountinfo")
    usb = fs_from_mountinfo(WORKSTATION, 80)
    assert usb == FsInfo("vfat", False, "/media/alice/USB Stick", "mountinfo")


@pytest.mark.parametrize(
    ("mount_id", "network"), [(62, False), (82, False), (83, True), (84, False), (29, False)]
)
def test_fuse_subtypes_are_judged_by_subtype(mount_id: int, network: bool) -> None:
    info = fs_from_mountinfo(WORKSTATION, mount_id)
    assert info is not None and info.network is network


def test_unknown_mount_id_gives_none() -> None:
    assert fs_from_mountinfo(WORKSTATION, 9999) is None


def test_mountinfo_line_with_several_optional_fields() -> None:
    line = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - nfs srv:/x rw,vers=3\n"
    assert fs_from_mountinfo(line, 36) == FsInfo("nfs", True, "/mnt2", "mountinfo")


# --- mount(8) output, fabricated ----------------------------------------------------------------


def test_macos_smb_share_is_network() -> None:
    text = (DATA / "mount-macos.txt").read_text()
    info = parse_mount_output(text, "/Volumes/Projects/mam")
    assert info is not None
    assert (info.fs_type, info.network, info.mount_point) == ("smbfs", True, "/Volumes/Projects")


def test_macos_nfs_with_space_in_mount_point_is_network() -> None:
    text = (DATA / "mount-macos.txt").read_text()
    info = parse_mount_output(text, "/Users/alice/nfs home/work")
    assert info is not None
    assert (info.fs_type, info.network, info.mount_point) == ("nfs", True, "/Users/alice/nfs home")


def test_macos_local_volumes_are_local() -> None:
    text = (DATA / "mount-macos.txt").read_text()
    root = parse_mount_output(text, "/Users/alice/src")
    assert root is not None and (root.fs_type, root.network, root.mount_point) == (
        "apfs",
        False,
        "/",
    )
    usb = parse_mount_output(text, "/Volumes/My Passport/x")
    assert usb is not None and (usb.fs_type, usb.mount_point) == ("exfat", "/Volumes/My Passport")
    # A prefix that is not a whole path component does not match.
    assert parse_mount_output(text, "/Volumes/ProjectsOld") == FsInfo(
        "apfs", False, "/", "mount", "/Volumes/ProjectsOld"
    )


def test_freebsd_nfs_is_network_and_zfs_local() -> None:
    text = (DATA / "mount-freebsd.txt").read_text()
    nfs = parse_mount_output(text, "/home/alice/projects/mam")
    assert nfs is not None
    assert (nfs.fs_type, nfs.network, nfs.mount_point) == ("nfs", True, "/home/alice/projects")
    home = parse_mount_output(text, "/home/alice")
    assert home is not None and (home.fs_type, home.network, home.mount_point) == (
        "zfs",
        False,
        "/home",
    )


def test_freebsd_later_mount_on_same_point_wins() -> None:
    text = (DATA / "mount-freebsd.txt").read_text()
    info = parse_mount_output(text, "/mnt/scratch/a")
    assert info is not None and (info.fs_type, info.network) == ("tmpfs", False)


def test_linux_mount_output_with_spaces_and_fuse() -> None:
    text = (DATA / "mount-linux.txt").read_text()
    share = parse_mount_output(text, "/srv/team share/ws")
    assert share is not None and (share.fs_type, share.network, share.mount_point) == (
        "cifs",
        True,
        "/srv/team share",
    )
    sshfs = parse_mount_output(text, "/home/alice/remote/ws")
    assert sshfs is not None and (sshfs.fs_type, sshfs.network) == ("fuse.sshfs", True)


def test_mount_output_with_nothing_usable_gives_none() -> None:
    assert parse_mount_output("garbage\n\n", "/x") is None


# --- statfs results (macOS, FreeBSD), fabricated ---------------------------------------------


def _darwin(fs_type: bytes, flags: int, mount_point: bytes) -> DarwinStatfs:
    buf = DarwinStatfs()
    buf.f_fstypename = fs_type
    buf.f_flags = flags
    buf.f_mntonname = mount_point
    return buf


def test_darwin_statfs_smbfs_without_mnt_local_is_network() -> None:
    info = fs_from_statfs(_darwin(b"smbfs", 0x00100018, b"/Volumes/Projects"), "/Volumes/Projects")
    assert info == FsInfo("smbfs", True, "/Volumes/Projects", "statfs", "/Volumes/Projects")


def test_darwin_statfs_apfs_local_is_local_and_unknown_remote_type_is_network() -> None:
    apfs = fs_from_statfs(_darwin(b"apfs", 0x00001000 | 0x1, b"/"), "/Users/a")
    assert apfs is not None and apfs.network is False
    # macFUSE sshfs reports its own type name; only the missing MNT_LOCAL gives it away.
    fuse = fs_from_statfs(_darwin(b"macfuse", 0x10, b"/Users/a/remote"), "/Users/a/remote")
    assert fuse is not None and fuse.network is True
    devfs = fs_from_statfs(_darwin(b"devfs", 0x0, b"/dev"), "/dev")
    assert devfs is not None and devfs.network is False


def test_freebsd_statfs_needs_the_current_struct_version() -> None:
    buf = FreeBSDStatfs()
    buf.f_version = FREEBSD_STATFS_VERSION
    buf.f_fstypename = b"nfs"
    buf.f_mntonname = b"/home/alice/projects"
    info = fs_from_statfs(buf, "/home/alice/projects/mam")
    assert info is not None and (info.fs_type, info.network) == ("nfs", True)
    buf.f_version = 0x20030518
    assert fs_from_statfs(buf, "/x") is None


def test_statfs_probe_calls_the_chosen_symbol_with_the_nearest_existing_path(
    tmp_path: Path,
) -> None:
    requested: list[str] = []
    paths: list[bytes] = []

    def fake_statfs(path: bytes, pointer: Any) -> int:
        paths.append(path)
        buf = pointer.contents
        buf.f_fstypename = b"nfs"
        buf.f_flags = 0
        buf.f_mntonname = os.fsencode(tmp_path)
        return 0

    def load(symbol: str) -> Any:
        requested.append(symbol)
        return fake_statfs

    info = _netfs._probe_statfs(tmp_path / "not" / "yet", "darwin", "x86_64", load)
    assert requested == ["statfs$INODE64"]
    assert paths == [os.fsencode(tmp_path)]
    assert info == FsInfo("nfs", True, str(tmp_path), "statfs", str(tmp_path))


def test_statfs_permission_error_stops_the_walk(tmp_path: Path) -> None:
    def denied(path: bytes, pointer: Any) -> int:
        ctypes.set_errno(errno.EACCES)
        return -1

    with pytest.raises(_netfs._WalkStopped) as stopped:
        _netfs._probe_statfs(tmp_path, "freebsd", "amd64", lambda symbol: denied)
    assert (stopped.value.method, stopped.value.probed) == ("permission-denied", str(tmp_path))


def test_statfs_missing_symbol_means_no_answer(tmp_path: Path) -> None:
    assert _netfs._probe_statfs(tmp_path, "darwin", "arm64", lambda symbol: None) is None


# --- the real thing on this machine -------------------------------------------------------------


def test_real_path_on_this_machine_is_local_via_mountinfo(tmp_path: Path) -> None:
    info = probe_filesystem(tmp_path)
    assert info.method == "mountinfo"
    assert info.network is False
    assert info.fs_type
    assert info.mount_point is not None
    assert str(tmp_path) == info.mount_point or str(tmp_path).startswith(
        info.mount_point.rstrip("/") + "/"
    )
    assert info.probed == str(tmp_path)


def test_path_that_does_not_exist_yet_probes_its_nearest_existing_ancestor(
    tmp_path: Path,
) -> None:
    info = probe_filesystem(tmp_path / "new" / "workspace")
    assert info.probed == str(tmp_path)
    assert info.network is False


def test_path_below_a_regular_file_probes_the_file(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    info = probe_filesystem(tmp_path / "plain" / "sub")
    assert info.probed == str(tmp_path / "plain")
    assert info.network is False


def test_fabricated_mountinfo_is_looked_up_by_the_real_mount_id(tmp_path: Path) -> None:
    # The mount id comes from the kernel (fdinfo of a real open fd); the table it is looked up
    # in is fabricated, which proves the lookup is by id and not by path.
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        real_id = mnt_id_from_fdinfo(Path(f"/proc/self/fdinfo/{fd}").read_text())
    finally:
        os.close(fd)
    assert real_id is not None
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "fdinfo").symlink_to("/proc/self/fdinfo")
    (proc / "self" / "mountinfo").write_text(
        f"1 0 0:1 / / rw - ext4 /dev/root rw\n"
        f"{real_id} 1 0:44 /export/u /work\\040tree rw,relatime - nfs4 srv:/export rw\n"
    )
    info = probe_filesystem(tmp_path / "ws", proc_root=proc)
    assert info == FsInfo("nfs4", True, "/work tree", "mountinfo", str(tmp_path))


def test_unreadable_proc_falls_back_to_mount_output(tmp_path: Path) -> None:
    runner = RecordingRunner()
    runner.answer(["mount"], stdout=f"srv:/export on {tmp_path} type nfs (rw)\n")
    info = probe_filesystem(tmp_path / "ws", proc_root=tmp_path / "no-proc", runner=runner)
    assert runner.calls == [("mount",)]
    assert info == FsInfo("nfs", True, str(tmp_path), "mount", str(tmp_path))


def test_nothing_usable_reports_unknown(tmp_path: Path) -> None:
    info = probe_filesystem(tmp_path, system="sunos", runner=RecordingRunner())
    assert (info.fs_type, info.network, info.method) == (None, None, "unavailable")


def test_hung_probe_reports_timeout_instead_of_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def hang(*args: object) -> FsInfo:
        release.wait(30)
        return FsInfo("nfs", True, "/", "mountinfo")

    monkeypatch.setattr(_netfs, "_probe_blocking", hang)
    try:
        info = probe_filesystem(tmp_path, timeout=0.2)
    finally:
        release.set()
    assert (info.fs_type, info.network, info.method) == (None, None, "timeout")


def test_unexpected_errors_in_the_worker_reach_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object) -> FsInfo:
        raise RuntimeError("boom")

    monkeypatch.setattr(_netfs, "_probe_blocking", explode)
    with pytest.raises(RuntimeError, match="boom"):
        probe_filesystem(tmp_path)


_PERMISSION_PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from mam_install.machine._netfs import probe_filesystem
info = probe_filesystem(Path(sys.argv[2]))
print(info.method, info.fs_type, info.network, info.probed)
"""


@pytest.fixture()
def locked_dir() -> Iterator[Path]:
    """A traversable directory holding a 0700 root-owned one (only meaningful as nobody)."""
    base = Path(tempfile.mkdtemp(prefix="mam-netfs-"))
    try:
        base.chmod(0o755)
        (base / "locked" / "inner").mkdir(parents=True)
        (base / "locked").chmod(0o700)
        yield base
    finally:
        (base / "locked").chmod(0o700)
        shutil.rmtree(base)


def test_permission_denied_stops_the_walk_and_reports_unknown(locked_dir: Path) -> None:
    target = locked_dir / "locked" / "inner" / "ws"
    if os.geteuid() != 0:
        (locked_dir / "locked").chmod(0o000)
        info = probe_filesystem(target)
        assert (info.method, info.fs_type, info.network) == ("permission-denied", None, None)
        return
    python = shutil.which("python3", path="/usr/bin:/bin:/usr/local/bin")
    if python is None:
        pytest.skip("no system python3 that an unprivileged user can run")
    # A copy of the package nobody can read, wherever the checkout lives (CI clones into 0700
    # directories).
    readable = locked_dir / "pkg"
    shutil.copytree(
        INSTALLER / "mam_install",
        readable / "mam_install",
        ignore=shutil.ignore_patterns("_data", "__pycache__"),
    )
    for path in [readable, *readable.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    proc = subprocess.run(
        [python, "-c", _PERMISSION_PROBE, str(readable), str(target)],
        user=65534,
        group=65534,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd="/",
    )
    if proc.returncode != 0 and "Permission denied" in proc.stderr and "mam_install" in proc.stderr:
        pytest.skip(f"the installer sources are not readable by nobody: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    # Never the ancestor's filesystem: the walk stops at the first path it may not look into.
    assert proc.stdout.split() == ["permission-denied", "None", "None", str(target)]


# --- real mounts (tmpfs), where this machine lets the test make them ---------------------------


def _try_mount(args: list[str]) -> str | None:
    mount = shutil.which("mount")
    if mount is None:
        return "mount(8) is not installed"
    proc = subprocess.run([mount, *args], capture_output=True, text=True, timeout=10, check=False)
    if proc.returncode != 0:
        return f"cannot mount here: {proc.stderr.strip() or proc.returncode}"
    return None


@pytest.fixture()
def mounts() -> Iterator[list[Path]]:
    made: list[Path] = []
    yield made
    for point in reversed(made):
        subprocess.run(["umount", str(point)], capture_output=True, timeout=10, check=False)


def _mount_tmpfs(mounts: list[Path], point: Path, source: str = "mamtest") -> None:
    point.mkdir(parents=True, exist_ok=True)
    why = _try_mount(["-t", "tmpfs", "-o", "size=1m", source, str(point)])
    if why is not None:
        pytest.skip(why)
    mounts.append(point)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs mounts need Linux")
def test_real_tmpfs_mount_with_a_space_is_reported_local(
    tmp_path: Path, mounts: list[Path]
) -> None:
    point = tmp_path / "my mount"
    _mount_tmpfs(mounts, point)
    info = probe_filesystem(point / "workspace" / "not-yet")
    assert info == FsInfo("tmpfs", False, str(point), "mountinfo", str(point))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs mounts need Linux")
def test_real_mount_hidden_under_a_later_mount_is_not_reported(
    tmp_path: Path, mounts: list[Path]
) -> None:
    outer = tmp_path / "outer"
    inner = outer / "inner"
    _mount_tmpfs(mounts, outer, "lower")
    _mount_tmpfs(mounts, inner, "hidden")
    _mount_tmpfs(mounts, outer, "upper")  # hides both the lower tmpfs and the one inside it
    inner.mkdir()
    # The hidden mount is still listed: a longest-prefix match would wrongly pick it.
    listed = Path("/proc/self/mountinfo").read_text().replace("\\040", " ")
    assert f" {inner} " in listed
    info = probe_filesystem(inner)
    assert info.mount_point == str(outer)
    assert info.probed == str(inner)
