"""Which filesystem holds a path, and whether it is a network one (NFS, SMB, sshfs, ...)."""

from __future__ import annotations

import errno
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .._runner import CommandRunner, SubprocessRunner

if TYPE_CHECKING:  # ctypes loads only where statfs is probed (macOS, FreeBSD), never on Linux
    import ctypes

    from ._statfs import StatfsFunction

__all__ = [
    "FsInfo",
    "fs_from_mountinfo",
    "fs_from_statfs",
    "is_network_fs",
    "mnt_id_from_fdinfo",
    "parse_mount_output",
    "probe_filesystem",
]

# Filesystem types whose data lives on another machine: flock is unreliable there and sockets
# cannot be created, which is why callers move locks and sockets to local disk.
# The payload's lib.sh carries the same two lists (mam_is_network_fs); a test holds them equal.
# fmt: off
NETWORK_FS_TYPES = frozenset({
    "9p", "afpfs", "afs", "beegfs", "ceph", "cifs", "coda", "davfs", "ftp", "gfs2", "glusterfs",
    "gpfs", "lustre", "ncp", "ncpfs", "nfs", "nfs4", "ocfs2", "openafs", "orangefs", "pvfs2", "smb",
    "smb2", "smb3", "smbfs", "sshfs", "webdav",
})
# fmt: on

# FUSE reports "fuse.<subtype>" (FreeBSD: "fusefs.<subtype>"); only these subtypes talk to
# another machine. Local FUSE filesystems (fuse.lxcfs, fuseblk, fuse.portal, ...) are not listed.
# fmt: off
NETWORK_FUSE_SUBTYPES = frozenset({
    "ceph", "ceph-fuse", "davfs2", "gcsfuse", "glusterfs", "goofys", "juicefs", "rclone", "s3fs",
    "sshfs",
})
# fmt: on
_FUSE_PREFIXES = ("fuse.", "fusefs.")

# BSD pseudo filesystems that lack MNT_LOCAL without being remote.
_BSD_PSEUDO_FS_TYPES = frozenset(
    {"autofs", "devfs", "fdescfs", "linprocfs", "linsysfs", "mqueuefs", "nullfs", "procfs"}
)


@dataclass(frozen=True)
class FsInfo:
    """What we learned about the filesystem holding a path.

    ``network`` is None when we could not tell; ``method`` says how we found out (``mountinfo``,
    ``statfs``, ``mount``) or why we could not (``timeout``, ``permission-denied``,
    ``unavailable``). ``probed`` is the nearest existing ancestor that was actually examined.
    """

    fs_type: str | None
    network: bool | None
    mount_point: str | None
    method: str
    probed: str | None = None


def is_network_fs(fs_type: str) -> bool:
    """Whether a filesystem type name (as the kernel or ``mount`` prints it) is a network one."""
    name = fs_type.strip().lower()
    if name in NETWORK_FS_TYPES:
        return True
    for prefix in _FUSE_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :] in NETWORK_FUSE_SUBTYPES
    return False


# --- Linux: /proc/self/fdinfo + /proc/self/mountinfo ------------------------------------------

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape_mountinfo(field: str) -> str:
    # The kernel escapes space, tab, newline and backslash in mountinfo as \ooo.
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def mnt_id_from_fdinfo(fdinfo_text: str) -> int | None:
    """The ``mnt_id:`` line of a ``/proc/<pid>/fdinfo/<fd>`` file (Linux 3.15+), or None."""
    for line in fdinfo_text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "mnt_id":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


def fs_from_mountinfo(mountinfo_text: str, mount_id: int) -> FsInfo | None:
    """Look a mount id up in ``/proc/self/mountinfo`` text; None if no line has that id.

    Line format (proc(5)): ``id parent major:minor root mount_point options [optional...] -
    fstype source super_options``; the optional fields end at the lone ``-``.
    """
    for line in mountinfo_text.splitlines():
        fields = line.split(" ")
        if len(fields) < 10 or not fields[0].isdigit() or int(fields[0]) != mount_id:
            continue
        try:
            separator = fields.index("-", 6)
        except ValueError:
            return None
        if separator + 1 >= len(fields):
            return None
        fs_type = _unescape_mountinfo(fields[separator + 1])
        return FsInfo(
            fs_type=fs_type,
            network=is_network_fs(fs_type),
            mount_point=_unescape_mountinfo(fields[4]),
            method="mountinfo",
        )
    return None


class _WalkStopped(Exception):
    """Walking up from the path hit an error that makes any ancestor's answer a lie."""

    def __init__(self, method: str, probed: str) -> None:
        super().__init__(method)
        self.method = method
        self.probed = probed


_T = TypeVar("_T")


def _walk_up(path: Path, attempt: Callable[[str], _T]) -> tuple[_T, str]:
    """Apply ``attempt`` to the path or its nearest existing ancestor; return (result, path).

    Only "does not exist" moves the walk up: after a permission error we cannot know whether
    the path itself is a mount point, so reporting the ancestor's filesystem would be a guess.
    """
    current = os.path.abspath(os.fspath(path))
    while True:
        try:
            return attempt(current), current
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise _WalkStopped("permission-denied", current) from exc
            parent = os.path.dirname(current)
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR) or parent == current:
                raise _WalkStopped("error", current) from exc
            current = parent


def _open_path(path: str) -> int:
    # O_PATH needs no read permission on the directory itself, only search on its parents,
    # exactly like the path lookup a workspace tool would do. A file is opened as such.
    flags = os.O_PATH | os.O_CLOEXEC
    try:
        return os.open(path, flags | os.O_DIRECTORY)
    except NotADirectoryError:
        return os.open(path, flags)


def _nearest_existing(path: Path) -> str:
    return _walk_up(path, os.stat)[1]


def _probe_linux(path: Path, proc_root: Path) -> FsInfo | None:
    fd, probed = _walk_up(path, _open_path)
    try:
        fdinfo = (proc_root / "self" / "fdinfo" / str(fd)).read_text()
    except OSError:
        return None
    finally:
        os.close(fd)
    mount_id = mnt_id_from_fdinfo(fdinfo)
    if mount_id is None:
        return None
    try:
        mountinfo = (proc_root / "self" / "mountinfo").read_text(errors="surrogateescape")
    except OSError:
        return None
    found = fs_from_mountinfo(mountinfo, mount_id)
    if found is None:
        return None
    return FsInfo(found.fs_type, found.network, found.mount_point, found.method, probed)


# --- macOS and FreeBSD: statfs(2) through ctypes ----------------------------------------------


def fs_from_statfs(buf: ctypes.Structure, probed: str) -> FsInfo | None:
    """Turn a filled statfs struct into an FsInfo (None if the struct is not one we know)."""
    from ._statfs import FREEBSD_STATFS_VERSION, MNT_LOCAL, FreeBSDStatfs

    if isinstance(buf, FreeBSDStatfs) and buf.f_version != FREEBSD_STATFS_VERSION:
        return None
    fs_type = bytes(buf.f_fstypename).split(b"\0", 1)[0].decode(errors="replace")
    mount_point = bytes(buf.f_mntonname).split(b"\0", 1)[0].decode(errors="surrogateescape")
    if not fs_type:
        return None
    local = bool(int(buf.f_flags) & MNT_LOCAL)
    name = fs_type.lower()
    network = is_network_fs(name) or (not local and name not in _BSD_PSEUDO_FS_TYPES)
    return FsInfo(fs_type, network, mount_point or None, "statfs", probed)


def _probe_statfs(
    path: Path,
    system: str,
    machine: str,
    load: Callable[[str], StatfsFunction | None] | None = None,
) -> FsInfo | None:
    from ._statfs import call_statfs, load_statfs

    probed = _nearest_existing(path)
    try:
        buf = call_statfs(os.fsencode(probed), system, machine, load or load_statfs)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise _WalkStopped("permission-denied", probed) from exc
        return None
    return None if buf is None else fs_from_statfs(buf, probed)


# --- Fallback: the output of mount(8) ---------------------------------------------------------

# util-linux:        /dev/sda1 on /home type ext4 (rw,relatime)
# macOS and FreeBSD: //u@srv/share on /Volumes/share (smbfs, nodev, nosuid, mounted by u)
# Patterns, compiled by re (and cached there) on first use: most runs never read mount(8).
_LINUX_MOUNT_LINE = r"^(?P<source>.+?) on (?P<target>/.*) type (?P<type>\S+) \(.*\)$"
_BSD_MOUNT_LINE = r"^(?P<source>.+?) on (?P<target>/.*) \((?P<type>[^,()]+)(?P<opts>[^()]*)\)$"


def _mount_entries(text: str) -> list[tuple[str, str, bool]]:
    """(mount point, type, says-local) for each line of ``mount`` output we can read."""
    entries = []
    for line in text.splitlines():
        line = line.rstrip()
        linux = re.match(_LINUX_MOUNT_LINE, line)
        if linux:
            entries.append((linux.group("target"), linux.group("type"), False))
            continue
        bsd = re.match(_BSD_MOUNT_LINE, line)
        if bsd:
            options = [o.strip() for o in bsd.group("opts").split(",")]
            entries.append((bsd.group("target"), bsd.group("type").strip(), "local" in options))
    return entries


def _contains(mount_point: str, path: str) -> bool:
    if mount_point == "/":
        return path.startswith("/")
    mount_point = mount_point.rstrip("/")
    return path == mount_point or path.startswith(mount_point + "/")


def parse_mount_output(text: str, path: str) -> FsInfo | None:
    """The filesystem holding ``path`` (absolute, symlinks resolved) according to ``mount``.

    The longest mount point containing the path wins; of equal ones the last listed, because
    a later mount on the same directory hides the earlier one.
    """
    best: tuple[str, str, bool] | None = None
    for entry in _mount_entries(text):
        if _contains(entry[0], path) and (best is None or len(entry[0]) >= len(best[0])):
            best = entry
    if best is None:
        return None
    mount_point, fs_type, says_local = best
    network = is_network_fs(fs_type) and not says_local
    return FsInfo(fs_type, network, mount_point, "mount", path)


def _probe_mount_command(path: Path, runner: CommandRunner, timeout: float) -> FsInfo | None:
    probed = _nearest_existing(path)
    result = runner.run(["mount"], timeout=timeout)
    if not result.ok:
        return None
    return parse_mount_output(result.stdout, os.path.realpath(probed))


# --- The probe, with a time limit --------------------------------------------------------------


def _probe_blocking(
    path: Path, proc_root: Path, system: str, machine: str, runner: CommandRunner, timeout: float
) -> FsInfo:
    try:
        found = None
        if system == "linux":
            found = _probe_linux(path, proc_root)
        elif system in ("darwin", "freebsd"):
            found = _probe_statfs(path, system, machine)
        if found is None:
            found = _probe_mount_command(path, runner, timeout)
    except _WalkStopped as stopped:
        return FsInfo(None, None, None, stopped.method, stopped.probed)
    if found is None:
        return FsInfo(None, None, None, "unavailable")
    return found


def probe_filesystem(
    path: Path,
    *,
    timeout: float = 2.0,
    proc_root: Path = Path("/proc"),
    system: str | None = None,
    machine: str | None = None,
    runner: CommandRunner | None = None,
) -> FsInfo:
    """Find the filesystem of ``path`` (or of its nearest existing ancestor), never hanging.

    The probe runs in a daemon thread: a hung NFS mount blocks ``open``/``statfs`` in the
    kernel, so after ``timeout`` seconds we give up on it and report ``method="timeout"``.
    """
    system = (system or sys.platform).lower()
    if system.startswith("freebsd"):
        system = "freebsd"
    if machine is None and system in ("darwin", "freebsd"):
        import platform  # only the statfs probes need it

        machine = platform.machine()
    machine = (machine or "").lower()
    chosen_runner: CommandRunner = runner if runner is not None else SubprocessRunner()
    outcome: list[FsInfo] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(
                _probe_blocking(path, proc_root, system, machine, chosen_runner, timeout)
            )
        except BaseException as exc:  # reported to the caller's thread below
            failure.append(exc)

    worker = threading.Thread(target=work, name="mam-fs-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return FsInfo(None, None, None, "timeout", os.fspath(path))
    if failure:
        raise failure[0]
    return outcome[0]
