"""``doctor``: what ``detect()`` found, what is missing, and the command that fixes each gap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ._detect import Host

__all__ = ["MIN_PYTHON", "DoctorReport", "Finding", "Level", "doctor_report", "paho_hint",
           "paho_install_command"]

Level = Literal["required", "recommended", "info"]

MIN_PYTHON = (3, 9)

# How each package manager installs a package; those marked True need root.
_INSTALL_COMMANDS: dict[str, tuple[str, bool]] = {
    "apt-get": ("apt-get install {}", True),
    "dnf": ("dnf install {}", True),
    "yum": ("yum install {}", True),
    "zypper": ("zypper install {}", True),
    "pacman": ("pacman -S {}", True),
    "apk": ("apk add {}", True),
    "brew": ("brew install {}", False),
    "port": ("port install {}", True),
    "pkg": ("pkg install {}", True),
}

# Distribution packages of paho-mqtt, for interpreters that refuse pip (PEP 668).
_PAHO_PACKAGES = {
    "apt-get": "python3-paho-mqtt",
    "dnf": "python3-paho-mqtt",
    "yum": "python3-paho-mqtt",
    "zypper": "python3-paho-mqtt",
    "pacman": "python-paho-mqtt",
    "apk": "py3-paho-mqtt",
}


@dataclass(frozen=True)
class Finding:
    """One line of the report. ``required`` findings decide ``ok``; the others only advise."""

    name: str
    level: Level
    ok: bool
    detail: str
    fix: str | None = None

    @property
    def status(self) -> str:
        if self.level == "info":
            return "info"
        if self.ok:
            return "ok"
        return "MISSING" if self.level == "required" else "WARN"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "level": self.level,
            "ok": self.ok,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class DoctorReport:
    host: Host
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """Everything required (Python >= 3.9 and tmux) is present."""
        return all(f.ok for f in self.findings if f.level == "required")

    @property
    def fixes(self) -> tuple[str, ...]:
        return tuple(f.fix for f in self.findings if not f.ok and f.fix)

    def render_text(self) -> str:
        width = max(len(f.name) for f in self.findings)
        lines = [f"{f.status:<8} {f.name:<{width}}  {f.detail}" for f in self.findings]
        if self.fixes:
            lines.append("")
            lines.append("To fix:")
            lines.extend(f"  {fix}" for fix in self.fixes)
        lines.append("")
        lines.append(
            "Everything required is present."
            if self.ok
            else "Something required is missing; mam will not run until it is fixed."
        )
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        document = self.host.to_json()
        document["ok"] = self.ok
        document["findings"] = [f.to_json() for f in self.findings]
        return document


def _system_install(host: Host, package: str) -> str | None:
    if host.package_manager is None:
        return None
    template, needs_root = _INSTALL_COMMANDS[host.package_manager]
    command = template.format(package)
    return f"sudo {command}" if needs_root and host.uid != 0 else command


def _python_finding(host: Host) -> Finding:
    python = host.python
    version = python.version_tuple
    if version is None:
        return Finding("python", "required", False, f"{python.executable} could not be run")
    need = ".".join(map(str, MIN_PYTHON))
    if version < MIN_PYTHON:
        fix = _system_install(host, "python3") or f"install Python {need} or newer"
        detail = f"{python.version} at {python.executable}; mam needs {need} or newer"
        return Finding("python", "required", False, detail, fix)
    return Finding("python", "required", True, f"{python.version} at {python.executable}")


def _tmux_finding(host: Host) -> Finding:
    tmux = host.tmux
    if not tmux.present:
        fix = _system_install(host, "tmux") or (
            "install tmux with your system's package manager "
            "(https://github.com/tmux/tmux/wiki/Installing)"
        )
        return Finding("tmux", "required", False, "tmux is not on PATH", fix)
    version = tmux.version or "unknown version"
    return Finding("tmux", "required", True, f"{version} at {tmux.path}")


def _mqtt_finding(host: Host) -> Finding:
    python = host.python
    if host.mqtt_client:
        return Finding(
            "mqtt_client", "recommended", True, f"paho-mqtt is importable by {python.executable}"
        )
    if host.mqtt_client is None:
        detail = f"could not check paho-mqtt with {python.executable}"
        return Finding("mqtt_client", "recommended", False, detail)
    detail = f"paho-mqtt is not importable by {python.executable}; the MQTT tools will not run"
    return Finding("mqtt_client", "recommended", False, detail, paho_install_command(host))


def paho_install_command(host: Host) -> str | None:
    """How to make paho-mqtt importable by the host's Python, the way that Python allows."""
    python = host.python
    return paho_hint(python.executable, in_venv=python.in_venv,
                     externally_managed=python.externally_managed,
                     package_manager=host.package_manager, uid=host.uid)


def paho_hint(
    executable: str, *, in_venv: bool, externally_managed: bool, package_manager: str | None,
    uid: int,
) -> str:
    """The paho-mqtt fix; the MQTT tools (mqtt_common.paho_install_hint) print the same words."""
    distro_package = _PAHO_PACKAGES.get(package_manager or "")
    if in_venv:
        return f"{executable} -m pip install paho-mqtt"
    if externally_managed and distro_package is not None and package_manager is not None:
        template, needs_root = _INSTALL_COMMANDS[package_manager]
        command = template.format(distro_package)
        return f"sudo {command}" if needs_root and uid != 0 else command
    if externally_managed:
        return f"{executable} -m pip install --user --break-system-packages paho-mqtt"
    return f"{executable} -m pip install --user paho-mqtt"


def _service_findings(host: Host) -> list[Finding]:
    if host.init == "launchd":
        detail = f"launchd, agents load into {host.launchd_domain}"
        return [Finding("user_units", "recommended", True, detail)]
    if host.systemd_user_usable:
        found = [
            Finding(
                "user_units",
                "recommended",
                True,
                f"systemd user manager is {host.systemd_state}",
            )
        ]
    else:
        reason = host.init_reason or "no user service manager"
        detail = f"{reason}; units are installed but must be started by hand"
        found = [Finding("user_units", "recommended", False, detail, _systemd_fix(host))]
    if host.init == "systemd-user":
        user = host.user or "$USER"
        if host.lingering:
            found.append(Finding("lingering", "recommended", True, f"enabled for {user}"))
        else:
            detail = "not enabled: user units stop when your last session ends"
            fix = f"loginctl enable-linger {user}"
            found.append(Finding("lingering", "recommended", False, detail, fix))
    return found


def _systemd_fix(host: Host) -> str | None:
    if host.wsl == 2 and host.init == "none":
        sudo = "" if host.uid == 0 else "sudo "
        return (
            f"printf '[boot]\\nsystemd=true\\n' | {sudo}tee -a /etc/wsl.conf && wsl.exe --shutdown"
        )
    if host.init != "systemd-user":
        return None
    if host.systemd_state is None and host.init_reason and "XDG_RUNTIME_DIR" in host.init_reason:
        return f"export XDG_RUNTIME_DIR=/run/user/{host.uid}"
    if not host.lingering:
        return f"loginctl enable-linger {host.user or '$USER'}"
    return None


def _workspace_finding(host: Host) -> Finding | None:
    workspace = host.workspace
    if workspace is None:
        return None
    if workspace.network_fs is None:
        detail = f"could not tell which filesystem holds {workspace.path} ({workspace.method})"
        return Finding("workspace", "recommended", False, detail)
    if workspace.network_fs:
        detail = (
            f"{workspace.path} is on {workspace.fs_type} (network): locks, sockets and "
            "sequence state will be kept on local disk"
        )
        return Finding("workspace", "info", True, detail)
    return Finding("workspace", "info", True, f"{workspace.path} is on {workspace.fs_type}")


def _platform_finding(host: Host) -> Finding:
    parts = [host.os, host.arch]
    if host.libc:
        parts.append(host.libc)
    if host.wsl:
        parts.append(f"WSL{host.wsl}")
    if host.container and host.container != "wsl":
        parts.append(f"container {host.container}")
    detail = ", ".join(parts)
    if host.container_hint:
        detail += f" ({host.container_hint})"
    return Finding("platform", "info", True, detail)


def _shell_finding(host: Host) -> Finding:
    shell = host.shell
    family = shell.family or "unknown"
    files = ", ".join(str(rc.path) for rc in host.rc_files)
    return Finding("shell", "info", True, f"{family}; the PATH block goes into {files}")


def _broker_finding(host: Host) -> Finding:
    """The private broker `mam broker init` sets up: config, certificates, a TLS answer."""
    import os

    from ._broker_check import broker_state
    from ._host_layout import _config_home

    state = broker_state(_config_home(host.home, os.environ) / "mam")
    if not state.configured:
        return Finding("broker", "info", True, f"no private broker configured ({state.conf})",
                       None)
    certs = ", ".join(
        f"{name} {'unreadable' if days is None else f'expires in {days} days'}"
        for name, _, days in state.certificates
    )
    if state.problem is not None or not state.ok:
        detail = f"{state.conf}: {state.problem or certs}"
        fix = ("mam broker init" if state.problem and state.problem.startswith("missing")
               else "systemctl --user start mam-broker.service"
               if state.answers is False else "mam broker init (move the expiring certificate "
               "and its key aside first)")
        return Finding("broker", "recommended", False, detail, fix)
    return Finding("broker", "recommended", True,
                   f"answers on TLS port {state.port}; {certs} ({state.conf})")


def doctor_report(host: Host) -> DoctorReport:
    """Judge a detected host: required findings first, then advice, then plain facts."""
    findings = [_python_finding(host), _tmux_finding(host), _mqtt_finding(host)]
    findings.append(_broker_finding(host))
    findings.extend(_service_findings(host))
    workspace = _workspace_finding(host)
    if workspace is not None:
        findings.append(workspace)
    findings.append(_platform_finding(host))
    findings.append(_shell_finding(host))
    return DoctorReport(host, tuple(findings))
