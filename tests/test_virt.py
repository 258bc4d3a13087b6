"""Tests for machine._virt: WSL 1/2 and containers, on fabricated /proc and /run trees."""

from __future__ import annotations

from pathlib import Path

import pytest
from mam_install.machine._virt import ContainerInfo, detect_container, detect_wsl, wsl_version

WSL_DATA = Path(__file__).parent / "data" / "host" / "wsl"


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("kernel", "expected"),
    [("wsl1", 1), ("wsl2", 2), ("wsl2-old", 2), ("native", None)],
)
def test_wsl_version_from_real_kernel_strings(kernel: str, expected: int | None) -> None:
    osrelease = (WSL_DATA / f"{kernel}-osrelease").read_text()
    version = (WSL_DATA / f"{kernel}-version").read_text()
    assert wsl_version(osrelease, version, {}) == expected


def test_wsl_read_from_a_fabricated_proc(tmp_path: Path) -> None:
    _write(tmp_path, "proc/sys/kernel/osrelease", (WSL_DATA / "wsl1-osrelease").read_text())
    _write(tmp_path, "proc/version", (WSL_DATA / "wsl1-version").read_text())
    assert detect_wsl(tmp_path, {}) == 1


def test_custom_wsl2_kernel_is_recognised_by_wsl_variables() -> None:
    assert wsl_version("6.6.36-custom\n", "Linux version 6.6.36-custom\n", {}) is None
    env = {"WSL_DISTRO_NAME": "Debian"}
    assert wsl_version("6.6.36-custom\n", "Linux version 6.6.36-custom\n", env) == 2


def test_no_container_on_an_empty_tree(tmp_path: Path) -> None:
    assert detect_container(tmp_path, {}, wsl=None, pid=4242) == ContainerInfo(None, None)


def test_systemd_container_file_names_the_container(tmp_path: Path) -> None:
    _write(tmp_path, "run/systemd/container", "systemd-nspawn\n")
    found = detect_container(tmp_path, {}, wsl=None, pid=4242)
    assert found == ContainerInfo("systemd-nspawn", "/run/systemd/container")


def test_unknown_container_names_are_container_other(tmp_path: Path) -> None:
    _write(tmp_path, "run/systemd/container", "oci\n")
    assert detect_container(tmp_path, {}, wsl=None, pid=4242).name == "container-other"


def test_container_manager_file_comes_before_systemd_one(tmp_path: Path) -> None:
    _write(tmp_path, "run/host/container-manager", "podman\n")
    _write(tmp_path, "run/systemd/container", "docker\n")
    assert detect_container(tmp_path, {}, wsl=None, pid=4242).name == "podman"


def test_pid1_environment_is_authoritative_even_when_empty(tmp_path: Path) -> None:
    _write(tmp_path, "run/systemd/container", "docker\n")
    assert detect_container(tmp_path, {"container": "lxc"}, wsl=None, pid=1).name == "lxc"
    assert detect_container(tmp_path, {"container": ""}, wsl=None, pid=1).name is None
    # Not PID 1: our own environment says nothing about the container.
    assert detect_container(tmp_path, {"container": "lxc"}, wsl=None, pid=7).name == "docker"


def test_pid1_environ_is_read_when_readable(tmp_path: Path) -> None:
    _write(tmp_path, "proc/1/environ", "PATH=/usr/bin\0container=lxc\0HOME=/\0")
    assert detect_container(tmp_path, {}, wsl=None, pid=4242).name == "lxc"


def test_podman_containerenv(tmp_path: Path) -> None:
    _write(tmp_path, "run/.containerenv", "")
    assert detect_container(tmp_path, {}, wsl=None, pid=4242).name == "podman"


def test_dockerenv_alone_is_only_a_hint(tmp_path: Path) -> None:
    _write(tmp_path, ".dockerenv", "")
    _write(tmp_path, "proc/1/cgroup", "0::/\n")
    _write(tmp_path, "proc/1/sched", "systemd (1, #threads: 1)\n")
    found = detect_container(tmp_path, {}, wsl=None, pid=4242)
    assert found.name is None
    assert found.hint is not None and "/.dockerenv" in found.hint


def test_dockerenv_with_a_docker_cgroup_is_docker(tmp_path: Path) -> None:
    _write(tmp_path, ".dockerenv", "")
    _write(tmp_path, "proc/1/cgroup", "12:pids:/docker/4f1e0c0b1d2a\n0::/\n")
    assert detect_container(tmp_path, {}, wsl=None, pid=4242) == ContainerInfo(
        "docker", "/.dockerenv"
    )


def test_dockerenv_inside_a_pid_namespace_is_docker(tmp_path: Path) -> None:
    # cgroup v2 with a private cgroup namespace shows only "0::/"; the PID namespace tells.
    _write(tmp_path, ".dockerenv", "")
    _write(tmp_path, "proc/1/cgroup", "0::/\n")
    _write(tmp_path, "proc/1/sched", "sh (28735, #threads: 1)\n-------\n")
    assert detect_container(tmp_path, {}, wsl=None, pid=4242).name == "docker"


def test_pid_namespace_without_other_evidence_is_container_other(tmp_path: Path) -> None:
    _write(tmp_path, "proc/1/sched", "tini (9141, #threads: 1)\n")
    found = detect_container(tmp_path, {}, wsl=None, pid=4242)
    assert found == ContainerInfo("container-other", "/proc/1/sched")


def test_lxc_cgroup(tmp_path: Path) -> None:
    _write(tmp_path, "proc/1/cgroup", "0::/lxc.payload.web01/init.scope\n")
    assert detect_container(tmp_path, {}, wsl=None, pid=4242).name == "lxc"


def test_openvz_comes_first(tmp_path: Path) -> None:
    (tmp_path / "proc" / "vz").mkdir(parents=True)
    _write(tmp_path, "run/systemd/container", "docker\n")
    assert detect_container(tmp_path, {}, wsl=None, pid=4242).name == "openvz"
    (tmp_path / "proc" / "bc").mkdir()
    assert detect_container(tmp_path, {}, wsl=None, pid=4242).name == "docker"


def test_wsl_is_reported_as_systemd_does(tmp_path: Path) -> None:
    _write(tmp_path, "run/systemd/container", "docker\n")
    assert detect_container(tmp_path, {}, wsl=2, pid=4242).name == "wsl"


def test_proot_is_recognised_by_its_tracer(tmp_path: Path) -> None:
    _write(tmp_path, "proc/self/status", "Name:\tpython3\nTracerPid:\t812\n")
    _write(tmp_path, "proc/812/comm", "proot\n")
    assert detect_container(tmp_path, {}, wsl=None, pid=4242).name == "proot"
    _write(tmp_path, "proc/812/comm", "gdb\n")
    assert detect_container(tmp_path, {}, wsl=None, pid=4242).name is None
