"""What Linux is running inside: WSL 1 or 2, or a container (systemd-detect-virt's order)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ContainerInfo", "detect_container", "detect_wsl", "wsl_version"]

# systemd's names; any other value of a `container` variable is reported as container-other.
_CONTAINER_NAMES = frozenset(
    {"lxc", "lxc-libvirt", "systemd-nspawn", "docker", "podman", "rkt", "wsl", "proot", "pouch"}
)

_CGROUP_MARKERS = (
    ("/docker/", "docker"),
    ("/docker-", "docker"),
    ("libpod", "podman"),
    ("/lxc/", "lxc"),
    ("lxc.payload", "lxc"),
    ("/kubepods", "container-other"),
)

_SCHED_PID = re.compile(r"\((\d+),")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def wsl_version(osrelease: str, proc_version: str, env: Mapping[str, str]) -> int | None:
    """1 or 2 from the kernel strings WSL uses, else None.

    WSL1 fakes a kernel named ``...-Microsoft``; WSL2 runs a real one named
    ``...-microsoft-standard[-WSL2]``. A custom WSL2 kernel may say neither, so the variables
    WSL sets in every session are the last resort (WSL1's fixed kernel always says Microsoft).
    """
    text = f"{osrelease} {proc_version}"
    if "WSL2" in text or "microsoft" in text:
        return 2
    if "Microsoft" in text:
        return 1
    if env.get("WSL_DISTRO_NAME") or env.get("WSL_INTEROP"):
        return 2
    return None


def detect_wsl(root: Path, env: Mapping[str, str]) -> int | None:
    osrelease = _read(root / "proc" / "sys" / "kernel" / "osrelease") or ""
    proc_version = _read(root / "proc" / "version") or ""
    return wsl_version(osrelease, proc_version, env)


@dataclass(frozen=True)
class ContainerInfo:
    """``name`` as systemd-detect-virt would print it (None for none); ``hint`` for doubts."""

    name: str | None
    evidence: str | None
    hint: str | None = None


def _translate(value: str) -> str:
    value = value.strip()
    return value if value in _CONTAINER_NAMES else "container-other"


def _pid1_container_var(root: Path) -> str | None:
    # Needs ptrace rights over PID 1; without them this is silently skipped, as systemd does.
    environ = _read(root / "proc" / "1" / "environ")
    if environ is None:
        return None
    for item in environ.split("\0"):
        if item.startswith("container="):
            return item[len("container=") :]
    return None


def _proot(root: Path) -> bool:
    status = _read(root / "proc" / "self" / "status") or ""
    for line in status.splitlines():
        if line.startswith("TracerPid:"):
            tracer = line.split(":", 1)[1].strip()
            if tracer.isdigit() and tracer != "0":
                return (_read(root / "proc" / tracer / "comm") or "").strip() == "proot"
    return False


def _cgroup_container(root: Path) -> str | None:
    cgroup = _read(root / "proc" / "1" / "cgroup") or ""
    for marker, name in _CGROUP_MARKERS:
        if marker in cgroup:
            return name
    return None


def _in_pid_namespace(root: Path) -> bool:
    # /proc/1/sched shows PID 1's pid as the host sees it: not 1 inside a PID namespace.
    first_line = (_read(root / "proc" / "1" / "sched") or "").split("\n", 1)[0]
    match = _SCHED_PID.search(first_line)
    return match is not None and match.group(1) != "1"


def detect_container(
    root: Path, env: Mapping[str, str], *, wsl: int | None, pid: int | None = None
) -> ContainerInfo:
    """The container we run in, checked in systemd-detect-virt's order, most specific first.

    ``/.dockerenv`` is only a hint: images and VMs built from them carry it along, so it counts
    only when PID 1's cgroup or a PID namespace agrees.
    """
    if (root / "proc" / "vz").exists() and not (root / "proc" / "bc").exists():
        return ContainerInfo("openvz", "/proc/vz")
    if wsl is not None:
        return ContainerInfo("wsl", "/proc/sys/kernel/osrelease")
    if _proot(root):
        return ContainerInfo("proot", "TracerPid")
    manager = _read(root / "run" / "host" / "container-manager")
    if manager and manager.strip():
        return ContainerInfo(_translate(manager), "/run/host/container-manager")
    if (os.getpid() if pid is None else pid) == 1 and "container" in env:
        value = env["container"]
        return ContainerInfo(_translate(value) if value else None, "$container of PID 1")
    from_systemd = _read(root / "run" / "systemd" / "container")
    if from_systemd and from_systemd.strip():
        return ContainerInfo(_translate(from_systemd), "/run/systemd/container")
    from_environ = _pid1_container_var(root)
    if from_environ:
        return ContainerInfo(_translate(from_environ), "/proc/1/environ")
    if (root / "run" / ".containerenv").exists():
        return ContainerInfo("podman", "/run/.containerenv")
    from_cgroup = _cgroup_container(root)
    dockerenv = (root / ".dockerenv").exists()
    if dockerenv and (from_cgroup == "docker" or _in_pid_namespace(root)):
        return ContainerInfo("docker", "/.dockerenv")
    if from_cgroup is not None:
        return ContainerInfo(from_cgroup, "/proc/1/cgroup")
    if _in_pid_namespace(root):
        return ContainerInfo("container-other", "/proc/1/sched")
    if dockerenv:
        return ContainerInfo(None, None, "/.dockerenv exists, but nothing else says docker")
    return ContainerInfo(None, None)
