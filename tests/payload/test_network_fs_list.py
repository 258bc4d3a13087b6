"""One list of network filesystems: lib.sh's and the installer's _netfs.py are the same."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from mam_install.machine._netfs import NETWORK_FS_TYPES, NETWORK_FUSE_SUBTYPES, is_network_fs

from tests.payload._support import LIB_SH


def lib_sh_list(name: str) -> set[str]:
    match = re.search(rf'^{name}="([^"]*)"$', LIB_SH.read_text(), re.M)
    assert match is not None, name
    return set(match.group(1).split())


def test_lib_sh_carries_exactly_the_installers_lists() -> None:
    assert lib_sh_list("_mam_network_fs_types") == set(NETWORK_FS_TYPES)
    assert lib_sh_list("_mam_network_fuse_subtypes") == set(NETWORK_FUSE_SUBTYPES)


@pytest.mark.parametrize("fs_type", ["gfs2", "ocfs2", "fuse.goofys", "fusefs.sshfs", "nfs4"])
def test_the_types_the_lists_once_disagreed_on_are_network_in_both(fs_type: str) -> None:
    assert is_network_fs(fs_type)
    assert fs_type.split(".")[-1] in NETWORK_FS_TYPES | NETWORK_FUSE_SUBTYPES


def every_type() -> list[str]:
    fuse = [f"{prefix}.{sub}" for sub in sorted(NETWORK_FUSE_SUBTYPES)
            for prefix in ("fuse", "fusefs")]
    local = ["ext4", "xfs", "tmpfs", "fuse.lxcfs", "fuseblk", "fuse.portal", "overlay"]
    return [*sorted(NETWORK_FS_TYPES), *fuse, *local]


def test_lib_sh_and_python_give_the_same_answer_for_every_type(tmp_path: Path) -> None:
    types = every_type()
    lines, script = [], []
    for number, fs_type in enumerate(types, start=100):
        mount_point = tmp_path / f"m{number}"
        mount_point.mkdir()
        lines.append(f"{number} 1 0:{number} / {mount_point} rw - {fs_type} src rw")
        script.append(f'mam_is_network_fs "{mount_point}"; echo $?')
    table = tmp_path / "mountinfo"
    table.write_text("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n" + "\n".join(lines) + "\n")
    runner = tmp_path / "runner.sh"
    runner.write_text(f'. "{LIB_SH}"\n' + "\n".join(script) + "\n")
    result = subprocess.run(["sh", str(runner)], env={"PATH": "/usr/bin:/bin",
                                                      "MAM_MOUNTINFO": str(table)},
                            capture_output=True, text=True, timeout=60)
    shell_says = dict(zip(types, result.stdout.split()))
    for fs_type in types:
        python_says = "0" if is_network_fs(fs_type) else None
        if python_says:
            assert shell_says[fs_type] == "0", fs_type
        else:
            assert shell_says[fs_type] != "0", fs_type
