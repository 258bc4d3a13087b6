"""Tests for machine._doctor: findings, their fix commands, the text and JSON reports."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from mam_install.machine._detect import Host, PythonInfo, TmuxInfo, WorkspaceInfo, detect
from mam_install.machine._doctor import DoctorReport, Finding, doctor_report
from mam_install.machine._shells import RcFile, ShellInfo

HOME = Path("/home/alice")


def make_host(**changes: Any) -> Host:
    """A healthy Debian desktop with a working systemd user manager; override what a test needs."""
    host = Host(
        os="linux",
        arch="x86_64",
        libc="glibc",
        wsl=None,
        container=None,
        container_hint=None,
        init="systemd-user",
        systemd_user_usable=True,
        systemd_state="running",
        init_reason=None,
        lingering=True,
        launchd_domain=None,
        uid=1000,
        user="alice",
        home=HOME,
        shell=ShellInfo("/bin/bash", "/bin/bash", "bash"),
        rc_files=(
            RcFile(HOME / ".profile", "sh", True, False),
            RcFile(HOME / ".bashrc", "bash", True, False),
        ),
        tmux=TmuxInfo(True, "/usr/bin/tmux", "3.3a"),
        python=PythonInfo("/usr/bin/python3", "3.11.2", False, True),
        mqtt_client=True,
        package_manager="apt-get",
        workspace=WorkspaceInfo("/home/alice/proj", "ext4", False, "/", "mountinfo"),
    )
    return dataclasses.replace(host, **changes)


def _finding(report: DoctorReport, name: str) -> Finding:
    (found,) = [f for f in report.findings if f.name == name]
    return found


def test_healthy_host_is_ok_with_nothing_to_fix() -> None:
    report = doctor_report(make_host())
    assert report.ok
    assert report.fixes == ()
    text = report.render_text()
    assert "To fix:" not in text
    assert "ok       tmux" in text
    assert text.endswith("Everything required is present.\n")


def test_missing_tmux_is_required_and_fixed_with_the_package_manager() -> None:
    report = doctor_report(make_host(tmux=TmuxInfo(False, None, None)))
    assert not report.ok
    tmux = _finding(report, "tmux")
    assert (tmux.level, tmux.ok, tmux.status) == ("required", False, "MISSING")
    assert tmux.fix == "sudo apt-get install tmux"
    text = report.render_text()
    assert "MISSING  tmux" in text
    assert "To fix:\n  sudo apt-get install tmux\n" in text
    assert "Something required is missing" in text


@pytest.mark.parametrize(
    ("os_name", "manager", "uid", "command"),
    [
        ("linux", "apt-get", 0, "apt-get install tmux"),
        ("linux", "dnf", 1000, "sudo dnf install tmux"),
        ("linux", "apk", 0, "apk add tmux"),
        ("linux", "pacman", 1000, "sudo pacman -S tmux"),
        ("darwin", "brew", 501, "brew install tmux"),
        ("freebsd", "pkg", 0, "pkg install tmux"),
        ("freebsd", "pkg", 1001, "sudo pkg install tmux"),
    ],
)
def test_tmux_fix_follows_the_package_manager(
    os_name: str, manager: str, uid: int, command: str
) -> None:
    host = make_host(os=os_name, package_manager=manager, uid=uid, tmux=TmuxInfo(False, None, None))
    assert _finding(doctor_report(host), "tmux").fix == command


def test_tmux_fix_without_a_known_package_manager_says_where_to_look() -> None:
    host = make_host(package_manager=None, tmux=TmuxInfo(False, None, None))
    fix = _finding(doctor_report(host), "tmux").fix
    assert fix is not None and "tmux/wiki/Installing" in fix


def test_old_python_is_required_to_be_upgraded() -> None:
    report = doctor_report(make_host(python=PythonInfo("/usr/bin/python3", "3.8.10")))
    python = _finding(report, "python")
    assert not report.ok and not python.ok
    assert "3.9" in python.detail and python.fix == "sudo apt-get install python3"


def test_unrunnable_python_is_missing() -> None:
    report = doctor_report(make_host(python=PythonInfo("/opt/py/bin/python3", None)))
    assert not report.ok and "could not be run" in _finding(report, "python").detail


@pytest.mark.parametrize(
    ("python", "manager", "fix"),
    [
        (
            PythonInfo("/usr/bin/python3", "3.11.2", False, True),
            "apt-get",
            "sudo apt-get install python3-paho-mqtt",
        ),
        (
            PythonInfo("/usr/bin/python3", "3.9.6", False, False),
            "brew",
            "/usr/bin/python3 -m pip install --user paho-mqtt",
        ),
        (
            PythonInfo("/opt/homebrew/bin/python3", "3.12.4", False, True),
            "brew",
            "/opt/homebrew/bin/python3 -m pip install --user --break-system-packages paho-mqtt",
        ),
        (
            PythonInfo("/home/alice/.venv/bin/python", "3.12.4", True, False),
            "apt-get",
            "/home/alice/.venv/bin/python -m pip install paho-mqtt",
        ),
    ],
)
def test_paho_fix_uses_the_exact_interpreter_or_its_distribution(
    python: PythonInfo, manager: str, fix: str
) -> None:
    report = doctor_report(make_host(python=python, package_manager=manager, mqtt_client=False))
    mqtt = _finding(report, "mqtt_client")
    assert (mqtt.level, mqtt.ok, mqtt.status, mqtt.fix) == ("recommended", False, "WARN", fix)
    assert report.ok, "paho-mqtt is recommended, not required"


def test_lingering_off_suggests_enable_linger_for_the_user() -> None:
    report = doctor_report(make_host(lingering=False))
    linger = _finding(report, "lingering")
    assert (linger.ok, linger.fix) == (False, "loginctl enable-linger alice")
    assert report.ok


def test_no_user_manager_over_ssh_without_lingering() -> None:
    host = make_host(
        systemd_user_usable=False,
        systemd_state="offline",
        init_reason="the user manager is offline",
        lingering=False,
    )
    units = _finding(doctor_report(host), "user_units")
    assert not units.ok and "started by hand" in units.detail
    assert units.fix == "loginctl enable-linger alice"


def test_missing_runtime_dir_suggests_exporting_it() -> None:
    host = make_host(
        systemd_user_usable=False,
        systemd_state=None,
        init_reason="XDG_RUNTIME_DIR is not set (not a full login session)",
        lingering=True,
    )
    assert (
        _finding(doctor_report(host), "user_units").fix == "export XDG_RUNTIME_DIR=/run/user/1000"
    )


def test_wsl2_without_systemd_suggests_enabling_it() -> None:
    host = make_host(
        wsl=2,
        container="wsl",
        init="none",
        systemd_user_usable=False,
        init_reason="systemd is not the init system (no /run/systemd/system)",
        lingering=None,
    )
    report = doctor_report(host)
    units = _finding(report, "user_units")
    assert units.fix is not None and "systemd=true" in units.fix and "/etc/wsl.conf" in units.fix
    assert not [f for f in report.findings if f.name == "lingering"]
    assert "WSL2" in _finding(report, "platform").detail


def test_macos_reports_the_launchd_domain() -> None:
    host = make_host(
        os="darwin",
        arch="arm64",
        libc=None,
        init="launchd",
        systemd_user_usable=False,
        systemd_state=None,
        lingering=None,
        launchd_domain="gui/501",
        package_manager="brew",
    )
    report = doctor_report(host)
    units = _finding(report, "user_units")
    assert units.ok and "gui/501" in units.detail
    assert not [f for f in report.findings if f.name == "lingering"]


def test_network_workspace_is_said_and_not_a_failure() -> None:
    workspace = WorkspaceInfo("/home/alice/proj", "nfs4", True, "/home", "mountinfo")
    report = doctor_report(make_host(workspace=workspace))
    found = _finding(report, "workspace")
    assert found.ok and "nfs4" in found.detail and "local disk" in found.detail


def test_workspace_probe_that_timed_out_is_a_warning() -> None:
    workspace = WorkspaceInfo("/net/proj", None, None, None, "timeout")
    found = _finding(doctor_report(make_host(workspace=workspace)), "workspace")
    assert (found.ok, found.status) == (False, "WARN") and "timeout" in found.detail


def test_shell_finding_lists_the_rc_files() -> None:
    found = _finding(doctor_report(make_host()), "shell")
    assert (
        found.detail == "bash; the PATH block goes into /home/alice/.profile, /home/alice/.bashrc"
    )


def test_json_is_the_host_record_plus_findings() -> None:
    host = make_host(tmux=TmuxInfo(False, None, None))
    document = doctor_report(host).to_json()
    assert {k: v for k, v in document.items() if k not in ("ok", "findings")} == host.to_json()
    assert document["ok"] is False
    tmux = next(f for f in document["findings"] if f["name"] == "tmux")
    assert tmux == {
        "name": "tmux",
        "level": "required",
        "ok": False,
        "detail": "tmux is not on PATH",
        "fix": "sudo apt-get install tmux",
    }
    assert json.loads(json.dumps(document)) == document


def test_doctor_on_this_machine(tmp_path: Path) -> None:
    report = doctor_report(detect(tmp_path))
    tmux_present = shutil.which("tmux") is not None
    assert report.ok is (tmux_present and sys.version_info >= (3, 9))
    assert _finding(report, "tmux").ok is tmux_present
    document = json.loads(json.dumps(report.to_json()))
    assert document["python"]["executable"] == sys.executable
    assert document["workspace"]["network_fs"] is False
    assert "python" in report.render_text()


def test_dockerenv_hint_is_shown_with_the_platform() -> None:
    host = make_host(container_hint="/.dockerenv exists, but nothing else says docker")
    detail = _finding(doctor_report(host), "platform").detail
    assert detail == "linux, x86_64, glibc (/.dockerenv exists, but nothing else says docker)"
