"""``detect()``: one frozen record of the machine mam-install runs on."""

from __future__ import annotations

import json
import os
import platform
import pwd
import re
import shutil
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._runner import CommandRunner, SubprocessRunner
from ._initsys import InitInfo, InitSystem, detect_init
from ._netfs import probe_filesystem
from ._shells import RcFile, ShellInfo, detect_shell, plan_rc_files
from ._virt import detect_container, detect_wsl

__all__ = [
    "Host",
    "PythonInfo",
    "TmuxInfo",
    "WorkspaceInfo",
    "detect",
    "parse_tmux_version",
    "tmux_version_tuple",
]

# Which package manager `doctor` should name in its fixes, most specific first per OS.
_PACKAGE_MANAGERS = {
    "linux": ("apt-get", "dnf", "yum", "zypper", "pacman", "apk"),
    "darwin": ("brew", "port"),
    "freebsd": ("pkg",),
}

MQTT_IMPORT_CHECK = "import paho.mqtt"

# Run with another interpreter to learn what sys.version_info etc. say there.
_PYTHON_FACTS = (
    "import json, os, sys, sysconfig;"
    "print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3],"
    " 'venv': sys.prefix != getattr(sys, 'base_prefix', sys.prefix),"
    " 'managed': os.path.exists(os.path.join(sysconfig.get_path('stdlib'),"
    " 'EXTERNALLY-MANAGED'))}))"
)


@dataclass(frozen=True)
class TmuxInfo:
    present: bool
    path: str | None
    version: str | None

    def to_json(self) -> dict[str, Any]:
        return {"present": self.present, "version": self.version, "path": self.path}


@dataclass(frozen=True)
class PythonInfo:
    """The interpreter the units will run; ``version`` is None if it could not be run."""

    executable: str
    version: str | None
    in_venv: bool = False
    externally_managed: bool = False

    @property
    def version_tuple(self) -> tuple[int, ...] | None:
        if self.version is None:
            return None
        return tuple(int(part) for part in re.findall(r"\d+", self.version)[:3])

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "executable": self.executable}


@dataclass(frozen=True)
class WorkspaceInfo:
    """The workspace's filesystem; ``network_fs`` is None when the probe could not tell."""

    path: str
    fs_type: str | None
    network_fs: bool | None
    mount_point: str | None
    method: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "fs_type": self.fs_type, "network_fs": self.network_fs}


@dataclass(frozen=True)
class Host:
    """Everything the host planner, ``doctor`` and the receipt need to know about this machine.

    ``to_json()`` has stable top-level keys (see there); fields not in it (uid, user, home,
    package_manager, systemd_state, init_reason, container_hint) are for planning and messages.
    """

    os: str
    arch: str
    libc: str | None
    wsl: int | None
    container: str | None
    container_hint: str | None
    init: InitSystem
    systemd_user_usable: bool
    systemd_state: str | None
    init_reason: str | None
    lingering: bool | None
    launchd_domain: str | None
    uid: int
    user: str | None
    home: Path
    shell: ShellInfo
    rc_files: tuple[RcFile, ...]
    tmux: TmuxInfo
    python: PythonInfo
    mqtt_client: bool | None
    package_manager: str | None
    workspace: WorkspaceInfo | None

    def to_json(self) -> dict[str, Any]:
        """The stable document ``doctor --json`` prints and the host receipt records.

        Keys: os, arch, libc, wsl, container, init, systemd_user_usable, lingering (Linux with
        systemd, else null), launchd_domain (macOS, else null), shell, rc_files, tmux {present,
        version, path}, python {version, executable}, mqtt_client, workspace {path, fs_type,
        network_fs} or null.
        """
        return {
            "os": self.os,
            "arch": self.arch,
            "libc": self.libc,
            "wsl": self.wsl,
            "container": self.container,
            "init": self.init,
            "systemd_user_usable": self.systemd_user_usable,
            "lingering": self.lingering,
            "launchd_domain": self.launchd_domain,
            "shell": self.shell.to_json(),
            "rc_files": [rc.to_json() for rc in self.rc_files],
            "tmux": self.tmux.to_json(),
            "python": self.python.to_json(),
            "mqtt_client": self.mqtt_client,
            "workspace": self.workspace.to_json() if self.workspace is not None else None,
        }


_TMUX_VERSION = re.compile(r"^tmux\s+(\S+)")


def parse_tmux_version(output: str) -> str | None:
    """The version word of ``tmux -V``: ``3.3a``, ``next-3.4``, ``openbsd-7.4``, ``master``."""
    match = _TMUX_VERSION.match(output.strip())
    return match.group(1) if match else None


def tmux_version_tuple(version: str | None) -> tuple[int, int] | None:
    """(major, minor) of a tmux version word, or None where it does not say (master, openbsd-)."""
    if not version or version.startswith("openbsd-"):
        return None
    match = re.search(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _normalize_system(system: str) -> str:
    system = system.lower()
    for prefix in ("linux", "freebsd", "openbsd", "netbsd"):
        if system.startswith(prefix):
            return prefix
    return system


def _passwd_entry(root: Path, uid: int) -> tuple[str | None, str | None, str | None]:
    """(name, home, login shell) for uid; a fabricated root is read from its etc/passwd."""
    if root == Path("/"):
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            return None, None, None
        return entry.pw_name, entry.pw_dir, entry.pw_shell
    try:
        lines = (root / "etc" / "passwd").read_text().splitlines()
    except OSError:
        return None, None, None
    for line in lines:
        fields = line.split(":")
        if len(fields) >= 7 and fields[2] == str(uid):
            return fields[0], fields[5], fields[6]
    return None, None, None


def _detect_libc(system: str, root: Path) -> str | None:
    if system != "linux":
        return None
    if root == Path("/"):
        try:
            if os.confstr("CS_GNU_LIBC_VERSION"):
                return "glibc"
        except (ValueError, OSError):
            pass
    # musl has no confstr name for itself; its dynamic loader is the reliable trace.
    for libdir in ("lib", "usr/lib"):
        base = root / libdir
        if any(base.glob("ld-musl-*.so.1")):
            return "musl"
        if root != Path("/") and (
            any(base.glob("ld-linux*.so.*")) or any(base.glob("*/libc.so.6"))
        ):
            return "glibc"
    return None


def _detect_tmux(path: str, runner: CommandRunner, env: Mapping[str, str]) -> TmuxInfo:
    tmux = shutil.which("tmux", path=path)
    if tmux is None:
        return TmuxInfo(False, None, None)
    result = runner.run([tmux, "-V"], timeout=3.0, env=env)
    return TmuxInfo(True, tmux, parse_tmux_version(result.stdout) if result.ok else None)


def _detect_python(executable: str, runner: CommandRunner, env: Mapping[str, str]) -> PythonInfo:
    if os.path.realpath(executable) == os.path.realpath(sys.executable):
        stdlib = sysconfig.get_path("stdlib")
        return PythonInfo(
            executable=executable,
            version=platform.python_version(),
            in_venv=sys.prefix != getattr(sys, "base_prefix", sys.prefix),
            externally_managed=os.path.exists(os.path.join(stdlib, "EXTERNALLY-MANAGED")),
        )
    result = runner.run([executable, "-c", _PYTHON_FACTS], timeout=5.0, env=env)
    try:
        facts = json.loads(result.stdout) if result.ok else None
    except ValueError:
        facts = None
    if not isinstance(facts, dict):
        return PythonInfo(executable, None)
    return PythonInfo(
        executable, str(facts["version"]), bool(facts["venv"]), bool(facts["managed"])
    )


def _detect_mqtt_client(
    python: PythonInfo, runner: CommandRunner, env: Mapping[str, str]
) -> bool | None:
    if python.version is None:
        return None
    result = runner.run([python.executable, "-c", MQTT_IMPORT_CHECK], timeout=5.0, env=env)
    if result.timed_out or result.returncode in (126, 127):
        return None
    return result.returncode == 0


def _find_package_manager(system: str, path: str) -> str | None:
    for name in _PACKAGE_MANAGERS.get(system, ()):
        if shutil.which(name, path=path) is not None:
            return name
    return None


def _detect_workspace(
    workspace: Path, system: str, root: Path, runner: CommandRunner, timeout: float
) -> WorkspaceInfo:
    info = probe_filesystem(
        workspace, timeout=timeout, proc_root=root / "proc", system=system, runner=runner
    )
    return WorkspaceInfo(str(workspace), info.fs_type, info.network, info.mount_point, info.method)


def detect(
    workspace: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    runner: CommandRunner | None = None,
    root: Path = Path("/"),
    home: Path | None = None,
    python: str | None = None,
    system: str | None = None,
    fs_timeout: float = 2.0,
) -> Host:
    """Look at this machine (or a fabricated one under ``root``) and describe it.

    Every command goes through ``runner`` with a short timeout; ``python`` is the interpreter
    the units will run (default: this one); ``system`` overrides ``sys.platform`` for tests.
    """
    env = os.environ if env is None else env
    runner = SubprocessRunner() if runner is None else runner
    system = _normalize_system(system or sys.platform)
    search_path = env.get("PATH", os.defpath)
    uid = os.getuid()
    user, passwd_home, login_shell = _passwd_entry(root, uid)
    user = user or env.get("USER") or env.get("LOGNAME")
    if home is None:
        home = Path(env.get("HOME") or passwd_home or os.path.expanduser("~"))

    wsl = detect_wsl(root, env) if system == "linux" else None
    container = detect_container(root, env, wsl=wsl) if system == "linux" else None
    init: InitInfo = detect_init(system, env=env, runner=runner, root=root, uid=uid, user=user)
    shell = detect_shell(login_shell=login_shell, env=env, system=system, root=root)
    python_info = _detect_python(python or sys.executable, runner, env)

    return Host(
        os=system,
        arch=platform.machine().lower(),
        libc=_detect_libc(system, root),
        wsl=wsl,
        container=container.name if container else None,
        container_hint=container.hint if container else None,
        init=init.init,
        systemd_user_usable=init.systemd_user_usable,
        systemd_state=init.systemd_state,
        init_reason=init.reason,
        lingering=init.lingering,
        launchd_domain=init.launchd_domain,
        uid=uid,
        user=user,
        home=home,
        shell=shell,
        rc_files=plan_rc_files(home, shell, env, runner),
        tmux=_detect_tmux(search_path, runner, env),
        python=python_info,
        mqtt_client=_detect_mqtt_client(python_info, runner, env),
        package_manager=_find_package_manager(system, search_path),
        workspace=(
            _detect_workspace(workspace, system, root, runner, fs_timeout)
            if workspace is not None
            else None
        ),
    )
