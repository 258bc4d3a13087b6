"""Tests for machine._detect: the Host record, on fabricated hosts and on this machine."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mam_install._runner import Completed, RecordingRunner
from mam_install.machine._detect import (
    MQTT_IMPORT_CHECK,
    Host,
    detect,
    parse_tmux_version,
    tmux_version_tuple,
)
from mam_install.machine._shells import RcFile

DATA = Path(__file__).parent / "data" / "host"

JSON_KEYS = {
    "os",
    "arch",
    "libc",
    "wsl",
    "container",
    "init",
    "systemd_user_usable",
    "lingering",
    "launchd_domain",
    "shell",
    "rc_files",
    "tmux",
    "python",
    "mqtt_client",
    "workspace",
}


@pytest.mark.parametrize(
    ("output", "version", "numbers"),
    [
        ("tmux 3.3a\n", "3.3a", (3, 3)),
        ("tmux 3.4\n", "3.4", (3, 4)),
        ("tmux next-3.4\n", "next-3.4", (3, 4)),
        ("tmux openbsd-7.4\n", "openbsd-7.4", None),
        ("tmux master\n", "master", None),
        ("tmux 2.6\n", "2.6", (2, 6)),
        ("", None, None),
        ("usage: tmux [-2CluvV]\n", None, None),
    ],
)
def test_tmux_version_is_parsed_loosely(
    output: str, version: str | None, numbers: tuple[int, int] | None
) -> None:
    assert parse_tmux_version(output) == version
    assert tmux_version_tuple(version) == numbers


def _tool(bindir: Path, name: str) -> str:
    bindir.mkdir(parents=True, exist_ok=True)
    tool = bindir / name
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    return str(tool)


class FabricatedHost:
    """A WSL2 Debian with systemd, a zsh user, and every command answered by a recording."""

    def __init__(self, base: Path) -> None:
        self.root = base / "root"
        self.home = base / "home" / "alice"
        self.bin = base / "bin"
        self.home.mkdir(parents=True)
        self.write(
            "etc/passwd",
            f"alice:x:{os.getuid()}:{os.getgid()}:Alice:{self.home}:/usr/bin/zsh\n"
            "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
        )
        self.write("proc/sys/kernel/osrelease", (DATA / "wsl" / "wsl2-osrelease").read_text())
        self.write("proc/version", (DATA / "wsl" / "wsl2-version").read_text())
        self.write("lib/ld-linux-x86-64.so.2", "")
        (self.root / "run" / "systemd" / "system").mkdir(parents=True)
        self.runner = RecordingRunner()
        self.tmux = _tool(self.bin, "tmux")
        self.systemctl = _tool(self.bin, "systemctl")
        self.loginctl = _tool(self.bin, "loginctl")
        _tool(self.bin, "apt-get")
        self.runner.answer([self.tmux, "-V"], stdout="tmux next-3.4\n")
        self.answer([self.systemctl, "--user", "is-system-running"], 1, "degraded\n")
        self.runner.answer([self.loginctl, "show-user", "alice", "-p", "Linger"], 0, "Linger=no\n")
        self.answer([sys.executable, "-c", MQTT_IMPORT_CHECK], 1, "")
        self.env = {
            "PATH": str(self.bin),
            "SHELL": "/usr/bin/zsh",
            "XDG_RUNTIME_DIR": "/run/user/1000",
            "ZDOTDIR": str(self.home / ".zsh"),
        }

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def answer(self, argv: list[str], rc: int, out: str) -> None:
        self.runner.answers[tuple(argv)] = Completed(tuple(argv), rc, out)

    def detect(self, workspace: Path | None = None) -> Host:
        return detect(
            workspace,
            env=self.env,
            runner=self.runner,
            root=self.root,
            home=self.home,
            system="linux",
        )


@pytest.fixture()
def fabricated(tmp_path: Path) -> FabricatedHost:
    return FabricatedHost(tmp_path)


def test_fabricated_wsl2_systemd_zsh_host(fabricated: FabricatedHost) -> None:
    host = fabricated.detect()
    assert (host.os, host.libc, host.wsl, host.container) == ("linux", "glibc", 2, "wsl")
    assert (host.init, host.systemd_user_usable, host.systemd_state) == (
        "systemd-user",
        True,
        "degraded",
    )
    assert host.lingering is False
    assert host.user == "alice"
    assert host.shell.login == "/usr/bin/zsh" and host.shell.family == "zsh"
    assert host.rc_files == (
        RcFile(fabricated.home / ".profile", "sh", False, False),
        RcFile(fabricated.home / ".zsh" / ".zshrc", "zsh", False, False),
    )
    assert (host.tmux.present, host.tmux.path, host.tmux.version) == (
        True,
        fabricated.tmux,
        "next-3.4",
    )
    assert host.python.version == platform.python_version()
    assert host.mqtt_client is False
    assert host.package_manager == "apt-get"
    assert host.workspace is None


def test_every_subprocess_goes_through_the_runner(fabricated: FabricatedHost) -> None:
    fabricated.detect()
    assert set(fabricated.runner.calls) == {
        (fabricated.systemctl, "--user", "is-system-running"),
        (fabricated.loginctl, "show-user", "alice", "-p", "Linger"),
        (fabricated.tmux, "-V"),
        (sys.executable, "-c", MQTT_IMPORT_CHECK),
    }


def test_json_has_exactly_the_stable_keys_and_is_json_safe(fabricated: FabricatedHost) -> None:
    document = fabricated.detect().to_json()
    assert set(document) == JSON_KEYS
    assert set(document["tmux"]) >= {"present", "version"}
    assert set(document["python"]) == {"version", "executable"}
    assert document["init"] == "systemd-user"
    assert json.loads(json.dumps(document)) == document


def test_missing_tmux_is_reported_absent(fabricated: FabricatedHost) -> None:
    os.unlink(fabricated.tmux)
    host = fabricated.detect()
    assert (host.tmux.present, host.tmux.path, host.tmux.version) == (False, None, None)
    assert host.to_json()["tmux"]["present"] is False


def test_musl_is_found_by_its_loader(fabricated: FabricatedHost) -> None:
    os.unlink(fabricated.root / "lib" / "ld-linux-x86-64.so.2")
    fabricated.write("lib/ld-musl-x86_64.so.1", "")
    assert fabricated.detect().libc == "musl"


def test_workspace_that_does_not_exist_yet_on_an_nfs_mount(
    fabricated: FabricatedHost, tmp_path: Path
) -> None:
    # The fabricated root has no /proc/self/fdinfo, so the probe falls back to mount(8).
    fabricated.runner.answer(
        ["mount"], stdout=f"fs:/export on {tmp_path} type nfs4 (rw,relatime,vers=4.2)\n"
    )
    host = fabricated.detect(tmp_path / "projects" / "new")
    assert host.workspace is not None
    assert host.workspace.to_json() == {
        "path": str(tmp_path / "projects" / "new"),
        "fs_type": "nfs4",
        "network_fs": True,
    }


def test_macos_host_uses_launchd(fabricated: FabricatedHost) -> None:
    fabricated.env["SSH_CONNECTION"] = "10.0.0.9 52311 10.0.0.5 22"
    host = detect(
        env=fabricated.env,
        runner=fabricated.runner,
        root=fabricated.root,
        home=fabricated.home,
        system="darwin",
    )
    assert (host.os, host.init, host.launchd_domain) == ("darwin", "launchd", f"user/{os.getuid()}")
    assert (host.libc, host.wsl, host.container, host.shell.parent) == (None, None, None, None)


@pytest.mark.parametrize("version", ["3.9.18", "3.13.0"])
def test_another_interpreter_is_asked_for_its_version_and_paho(version: str) -> None:
    python = Path(f"/root/.pyenv/versions/{version}/bin/python3")
    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} is not installed")
    host = detect(python=str(python))
    assert host.python.version == version
    has_paho = subprocess.run(
        [str(python), "-c", "import paho.mqtt"], capture_output=True
    ).returncode
    assert host.mqtt_client is (has_paho == 0)


def test_unrunnable_interpreter_gives_unknown_python_and_mqtt(tmp_path: Path) -> None:
    host = detect(python=str(tmp_path / "no-python"), runner=RecordingRunner())
    assert (host.python.version, host.mqtt_client) == (None, None)


# --- the real thing on this machine -------------------------------------------------------------


def test_detect_on_this_machine_tells_the_truth(tmp_path: Path) -> None:
    started = time.perf_counter()
    host = detect(tmp_path)
    elapsed = time.perf_counter() - started
    assert host.os == ("linux" if sys.platform.startswith("linux") else sys.platform)
    assert host.arch == platform.machine().lower()
    assert host.python.version == platform.python_version()
    assert host.python.executable == sys.executable
    tmux = shutil.which("tmux")
    assert host.tmux.present is (tmux is not None)
    if tmux is not None:
        printed = subprocess.run([tmux, "-V"], capture_output=True, text=True).stdout
        assert host.tmux.version == printed.split()[1]
    paho = subprocess.run([sys.executable, "-c", "import paho.mqtt"], capture_output=True)
    assert host.mqtt_client is (paho.returncode == 0)
    assert host.workspace is not None and host.workspace.network_fs is False
    assert host.rc_files[0].path == host.home / ".profile"
    if sys.platform.startswith("linux"):
        assert host.libc in ("glibc", "musl")
        assert (host.init == "systemd-user") == Path("/run/systemd/system").is_dir()
    # install calls detect(); it has to stay cheap (0.06 s here; the bound absorbs slow CI).
    assert elapsed < 1.5
