"""Tests for mam_install.machine._statfs: struct layouts checked against the headers' offsets."""

from __future__ import annotations

import ctypes
import errno
from typing import Any

import pytest
from mam_install.machine._statfs import (
    DarwinStatfs,
    FreeBSDStatfs,
    call_statfs,
    statfs_layout,
)


def test_darwin_statfs64_layout_matches_sys_mount_h() -> None:
    assert ctypes.sizeof(DarwinStatfs) == 2168
    assert DarwinStatfs.f_flags.offset == 64
    assert DarwinStatfs.f_fstypename.offset == 72
    assert DarwinStatfs.f_mntonname.offset == 88
    assert DarwinStatfs.f_mntfromname.offset == 1112


def test_freebsd_statfs_layout_matches_sys_mount_h() -> None:
    assert FreeBSDStatfs.f_flags.offset == 8
    assert FreeBSDStatfs.f_fstypename.offset == 280
    assert FreeBSDStatfs.f_mntonname.offset == 1320
    assert ctypes.sizeof(FreeBSDStatfs) == 2344


def test_statfs_symbol_is_inode64_on_intel_macs_only() -> None:
    assert statfs_layout("darwin", "x86_64") == (DarwinStatfs, "statfs$INODE64")
    assert statfs_layout("darwin", "arm64") == (DarwinStatfs, "statfs")
    assert statfs_layout("freebsd", "amd64") == (FreeBSDStatfs, "statfs")
    assert statfs_layout("openbsd", "amd64") is None


def test_call_statfs_raises_the_errno_it_failed_with() -> None:
    def denied(path: bytes, pointer: Any) -> int:
        ctypes.set_errno(errno.EACCES)
        return -1

    with pytest.raises(OSError) as raised:
        call_statfs(b"/x", "freebsd", "amd64", lambda symbol: denied)
    assert raised.value.errno == errno.EACCES


def test_call_statfs_fills_the_layout_for_the_os() -> None:
    seen: list[tuple[bytes, type]] = []

    def fake(path: bytes, pointer: Any) -> int:
        seen.append((path, type(pointer.contents)))
        pointer.contents.f_fstypename = b"apfs"
        return 0

    buf = call_statfs(b"/Users", "darwin", "arm64", lambda symbol: fake)
    assert isinstance(buf, DarwinStatfs) and bytes(buf.f_fstypename) == b"apfs"
    assert seen == [(b"/Users", DarwinStatfs)]


def test_unsupported_os_or_missing_symbol_gives_none() -> None:
    assert call_statfs(b"/", "openbsd", "amd64") is None
    assert call_statfs(b"/", "darwin", "x86_64", lambda symbol: None) is None
