"""Tests for machine._initsys: can systemd user units (or launchd agents) be used now."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mam_install._runner import Completed, RecordingRunner
from mam_install.machine._initsys import InitInfo, detect_init, systemd_state_from


def _bin(tmp_path: Path, *names: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for name in names:
        tool = bindir / name
        tool.write_text("#!/bin/sh\nexit 0\n")
        tool.chmod(0o755)
    return bindir


@pytest.fixture()
def systemd_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "run" / "systemd" / "system").mkdir(parents=True)
    return root


def _answer(
    runner: RecordingRunner, argv: list[str], rc: int, out: str = "", err: str = ""
) -> None:
    runner.answers[tuple(argv)] = Completed(tuple(argv), rc, out, err)


def _env(bindir: Path, **extra: str) -> dict[str, str]:
    return {"PATH": str(bindir), "XDG_RUNTIME_DIR": "/run/user/1000", **extra}


@pytest.mark.parametrize(
    ("stdout", "rc", "state"),
    [
        ("running\n", 0, "running"),
        ("degraded\n", 1, "degraded"),
        ("starting\n", 1, "starting"),
        ("offline\n", 1, "offline"),
        ("unknown\n", 1, "unknown"),
        ("", 1, None),
        ("Failed to connect to bus: No medium found\n", 1, None),
    ],
)
def test_state_is_the_printed_word_whatever_the_exit_code(
    stdout: str, rc: int, state: str | None
) -> None:
    result = Completed(("systemctl", "--user", "is-system-running"), rc, stdout)
    assert systemd_state_from(result) == state


def test_macos_gui_session_uses_the_gui_domain(tmp_path: Path) -> None:
    info = detect_init("darwin", env={}, runner=RecordingRunner(), root=tmp_path, uid=501, user="a")
    assert info == InitInfo("launchd", False, None, None, None, "gui/501")


def test_macos_over_ssh_uses_the_user_domain(tmp_path: Path) -> None:
    env = {"SSH_CONNECTION": "10.0.0.9 52311 10.0.0.5 22"}
    info = detect_init(
        "darwin", env=env, runner=RecordingRunner(), root=tmp_path, uid=501, user="a"
    )
    assert info.launchd_domain == "user/501"


def test_linux_without_systemd_as_init_runs_nothing(tmp_path: Path) -> None:
    runner = RecordingRunner()
    bindir = _bin(tmp_path, "systemctl", "loginctl")
    info = detect_init(
        "linux", env=_env(bindir), runner=runner, root=tmp_path, uid=1000, user="alice"
    )
    assert (info.init, info.systemd_user_usable, info.lingering) == ("none", False, None)
    assert info.reason is not None and "/run/systemd/system" in info.reason
    assert runner.calls == []


def test_freebsd_has_no_user_service_manager(tmp_path: Path) -> None:
    info = detect_init(
        "freebsd", env={}, runner=RecordingRunner(), root=tmp_path, uid=1001, user="b"
    )
    assert (info.init, info.systemd_user_usable) == ("none", False)


def test_degraded_user_manager_is_usable_although_it_exits_nonzero(
    tmp_path: Path, systemd_root: Path
) -> None:
    bindir = _bin(tmp_path, "systemctl", "loginctl")
    runner = RecordingRunner()
    _answer(runner, [str(bindir / "systemctl"), "--user", "is-system-running"], 1, "degraded\n")
    _answer(
        runner, [str(bindir / "loginctl"), "show-user", "alice", "-p", "Linger"], 0, "Linger=no\n"
    )
    info = detect_init(
        "linux", env=_env(bindir), runner=runner, root=systemd_root, uid=1000, user="alice"
    )
    assert info == InitInfo("systemd-user", True, "degraded", None, False, None)


def test_offline_user_manager_is_not_usable(tmp_path: Path, systemd_root: Path) -> None:
    bindir = _bin(tmp_path, "systemctl")
    runner = RecordingRunner()
    _answer(runner, [str(bindir / "systemctl"), "--user", "is-system-running"], 1, "offline\n")
    info = detect_init(
        "linux", env=_env(bindir), runner=runner, root=systemd_root, uid=1000, user="alice"
    )
    assert (info.systemd_user_usable, info.systemd_state) == (False, "offline")
    assert info.reason == "the user manager is offline"


def test_failed_to_connect_is_not_usable_and_says_why(tmp_path: Path, systemd_root: Path) -> None:
    bindir = _bin(tmp_path, "systemctl")
    runner = RecordingRunner()
    message = "Failed to connect to bus: No medium found"
    _answer(runner, [str(bindir / "systemctl"), "--user", "is-system-running"], 1, "", message)
    info = detect_init(
        "linux", env=_env(bindir), runner=runner, root=systemd_root, uid=1000, user="alice"
    )
    assert (info.systemd_user_usable, info.systemd_state, info.reason) == (False, None, message)


def test_timed_out_systemctl_is_not_usable(tmp_path: Path, systemd_root: Path) -> None:
    bindir = _bin(tmp_path, "systemctl")
    argv = (str(bindir / "systemctl"), "--user", "is-system-running")
    runner = RecordingRunner()
    runner.answers[argv] = Completed(argv, 124, "", "timed out after 3s", timed_out=True)
    info = detect_init(
        "linux", env=_env(bindir), runner=runner, root=systemd_root, uid=1000, user="alice"
    )
    assert not info.systemd_user_usable
    assert info.reason is not None and "timed out" in info.reason


def test_no_xdg_runtime_dir_means_not_usable_without_asking(
    tmp_path: Path, systemd_root: Path
) -> None:
    bindir = _bin(tmp_path, "systemctl")
    runner = RecordingRunner()
    info = detect_init(
        "linux", env={"PATH": str(bindir)}, runner=runner, root=systemd_root, uid=1000, user="a"
    )
    assert not info.systemd_user_usable
    assert info.reason is not None and "XDG_RUNTIME_DIR" in info.reason
    assert all("is-system-running" not in call for call in runner.calls)


def test_missing_systemctl_is_not_usable(tmp_path: Path, systemd_root: Path) -> None:
    bindir = _bin(tmp_path)
    info = detect_init(
        "linux", env=_env(bindir), runner=RecordingRunner(), root=systemd_root, uid=1000, user="a"
    )
    assert (info.init, info.systemd_user_usable, info.reason) == (
        "systemd-user",
        False,
        "systemctl is not on PATH",
    )


def test_linger_flag_file_is_enough(tmp_path: Path, systemd_root: Path) -> None:
    linger = systemd_root / "var" / "lib" / "systemd" / "linger"
    linger.mkdir(parents=True)
    (linger / "alice").write_text("")
    bindir = _bin(tmp_path, "loginctl")
    runner = RecordingRunner()
    info = detect_init(
        "linux", env=_env(bindir), runner=runner, root=systemd_root, uid=1000, user="alice"
    )
    assert info.lingering is True
    assert all("show-user" not in call for call in runner.calls)


def test_linger_from_loginctl(tmp_path: Path, systemd_root: Path) -> None:
    bindir = _bin(tmp_path, "loginctl")
    runner = RecordingRunner()
    _answer(
        runner, [str(bindir / "loginctl"), "show-user", "bob", "-p", "Linger"], 0, "Linger=yes\n"
    )
    info = detect_init(
        "linux", env=_env(bindir), runner=runner, root=systemd_root, uid=1000, user="bob"
    )
    assert info.lingering is True


def test_linger_unknown_when_nothing_can_tell(tmp_path: Path, systemd_root: Path) -> None:
    info = detect_init(
        "linux",
        env=_env(_bin(tmp_path)),
        runner=RecordingRunner(),
        root=systemd_root,
        uid=1000,
        user="bob",
    )
    assert info.lingering is None


def test_this_machine_agrees_with_its_own_run_directory() -> None:
    info = detect_init(
        "linux",
        env=dict(os.environ),
        runner=RecordingRunner(),
        root=Path("/"),
        uid=os.getuid(),
        user="root",
    )
    assert (info.init == "systemd-user") == Path("/run/systemd/system").is_dir()
