"""ctypes bindings for statfs(2) on macOS and FreeBSD, whose struct layouts differ."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from typing import Any

__all__ = [
    "FREEBSD_STATFS_VERSION",
    "MNT_LOCAL",
    "DarwinStatfs",
    "FreeBSDStatfs",
    "call_statfs",
    "load_statfs",
    "statfs_layout",
]

MNT_LOCAL = 0x1000  # the same value in macOS and FreeBSD sys/mount.h


class _Fsid(ctypes.Structure):
    _fields_ = [("val", ctypes.c_int32 * 2)]


class DarwinStatfs(ctypes.Structure):
    """``__DARWIN_STRUCT_STATFS64`` from macOS ``sys/mount.h`` (2168 bytes)."""

    _fields_ = [
        ("f_bsize", ctypes.c_uint32),
        ("f_iosize", ctypes.c_int32),
        ("f_blocks", ctypes.c_uint64),
        ("f_bfree", ctypes.c_uint64),
        ("f_bavail", ctypes.c_uint64),
        ("f_files", ctypes.c_uint64),
        ("f_ffree", ctypes.c_uint64),
        ("f_fsid", _Fsid),
        ("f_owner", ctypes.c_uint32),
        ("f_type", ctypes.c_uint32),
        ("f_flags", ctypes.c_uint32),
        ("f_fssubtype", ctypes.c_uint32),
        ("f_fstypename", ctypes.c_char * 16),
        ("f_mntonname", ctypes.c_char * 1024),
        ("f_mntfromname", ctypes.c_char * 1024),
        ("f_flags_ext", ctypes.c_uint32),
        ("f_reserved", ctypes.c_uint32 * 7),
    ]


class FreeBSDStatfs(ctypes.Structure):
    """``struct statfs`` from FreeBSD 12+ ``sys/mount.h`` (STATFS_VERSION 0x20140518)."""

    _fields_ = [
        ("f_version", ctypes.c_uint32),
        ("f_type", ctypes.c_uint32),
        ("f_flags", ctypes.c_uint64),
        ("f_bsize", ctypes.c_uint64),
        ("f_iosize", ctypes.c_uint64),
        ("f_blocks", ctypes.c_uint64),
        ("f_bfree", ctypes.c_uint64),
        ("f_bavail", ctypes.c_int64),
        ("f_files", ctypes.c_uint64),
        ("f_ffree", ctypes.c_int64),
        ("f_syncwrites", ctypes.c_uint64),
        ("f_asyncwrites", ctypes.c_uint64),
        ("f_syncreads", ctypes.c_uint64),
        ("f_asyncreads", ctypes.c_uint64),
        ("f_nvnodelistsize", ctypes.c_uint32),
        ("f_spare0", ctypes.c_uint32),
        ("f_spare", ctypes.c_uint64 * 9),
        ("f_namemax", ctypes.c_uint32),
        ("f_owner", ctypes.c_uint32),
        ("f_fsid", _Fsid),
        ("f_charspare", ctypes.c_char * 80),
        ("f_fstypename", ctypes.c_char * 16),
        ("f_mntfromname", ctypes.c_char * 1024),
        ("f_mntonname", ctypes.c_char * 1024),
    ]


FREEBSD_STATFS_VERSION = 0x20140518

StatfsFunction = Callable[[bytes, Any], int]


def statfs_layout(system: str, machine: str) -> tuple[type[ctypes.Structure], str] | None:
    """The struct and libc symbol to use for ``statfs`` on this OS and CPU, or None.

    On x86_64 macOS plain ``statfs`` is the legacy 32-bit-inode ABI with a different struct;
    the compiler normally redirects to ``statfs$INODE64``, so ctypes must name it explicitly.
    arm64 macOS only has the 64-bit-inode ABI, under the plain name.
    """
    if system == "darwin":
        symbol = "statfs$INODE64" if machine in ("x86_64", "i386") else "statfs"
        return DarwinStatfs, symbol
    if system == "freebsd":
        return FreeBSDStatfs, "statfs"
    return None


def load_statfs(symbol: str) -> StatfsFunction | None:
    libc_name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        function = libc[symbol]
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_int
    return function


def call_statfs(
    path: bytes,
    system: str,
    machine: str,
    load: Callable[[str], StatfsFunction | None] = load_statfs,
) -> ctypes.Structure | None:
    """statfs(2) of ``path`` as the right struct; None where unsupported; OSError on failure."""
    layout = statfs_layout(system, machine)
    if layout is None:
        return None
    struct_type, symbol = layout
    function = load(symbol)
    if function is None:
        return None
    buf = struct_type()
    if function(path, ctypes.pointer(buf)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"statfs failed for {path!r}")
    return buf
