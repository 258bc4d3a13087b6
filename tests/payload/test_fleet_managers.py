"""What `mam` asks systemd and launchd to do, through a recording runner (no user manager runs
here), and the per-agent launchd plist it instantiates, read back with plistlib."""

from __future__ import annotations

import json
import os
import plistlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.payload._fleet_support import load_fleet_module
from tests.payload._support import HOST, HOST_TOOLS, render

runner_module = load_fleet_module("runner")
managers = load_fleet_module("managers")
paths_module = load_fleet_module("paths")
roster_module = load_fleet_module("roster")
context = load_fleet_module("context")
fleet_cmds = load_fleet_module("fleet")
Result = runner_module.Result


class RecordingRunner:
    """Answers from a table; anything not answered fails closed (127), like the installer's."""

    def __init__(self, answers: Mapping[tuple, object] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.answers = dict(answers or {})

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
            stdin: str | None = None, timeout: float = 60.0) -> object:
        self.calls.append(list(argv))
        for prefix, result in self.answers.items():
            if tuple(argv[: len(prefix)]) == prefix:
                return result
        return Result(127, "", f"{argv[0]}: not answered in this test")

    def spawn(self, argv: Sequence[str], *, env: Mapping[str, str], log: Path) -> int:
        self.calls.append(["spawn", *argv])
        return 4242


def roster(tmp_path: Path, socket: str = "fleet-a") -> object:
    document = json.loads((HOST_TOOLS / "mam_fleet" / "examples" / "minimal.json").read_text())
    document["tmux"]["socket_name"] = socket
    return roster_module.parse_roster(document, tmp_path / "fleet.json", tmp_path)


def fleet_paths(tmp_path: Path, system: str) -> object:
    return paths_module.fleet_paths({"HOME": str(tmp_path / "home")}, tmp_path / "data" / "bin",
                                    system)


def test_systemd_drives_the_units_the_installer_laid_down(tmp_path: Path) -> None:
    runner = RecordingRunner({("systemctl",): Result(0, "active\n", "")})
    manager = managers.SystemdManager(runner, fleet_paths(tmp_path, "linux"), roster(tmp_path),
                                      {})
    manager.start_holder()
    manager.start_agent("agent-1")
    manager.restart_agent("agent-2")
    manager.stop_agent("agent-1")
    manager.stop_holder()
    assert manager.agent_state("agent-1") == "active"
    assert runner.calls == [
        ["systemctl", "--user", "start", "mam-tmux-holder.service"],
        ["systemctl", "--user", "start", "mam-agent@agent-1.service"],
        ["systemctl", "--user", "restart", "mam-agent@agent-2.service"],
        ["systemctl", "--user", "stop", "mam-agent@agent-1.service"],
        ["systemctl", "--user", "stop", "mam-tmux-holder.service"],
        ["systemctl", "--user", "show", "-p", "ActiveState", "--value",
         "mam-agent@agent-1.service"],
    ]


def test_a_failing_systemctl_is_an_error_naming_the_command(tmp_path: Path) -> None:
    runner = RecordingRunner({("systemctl",): Result(5, "", "Unit mam-agent@x.service not found.")})
    manager = managers.SystemdManager(runner, fleet_paths(tmp_path, "linux"), roster(tmp_path),
                                      {})
    with pytest.raises(load_fleet_module("errors").MamError) as caught:
        manager.start_agent("agent-1")
    assert str(caught.value) == ("could not start agent agent-1: `systemctl --user start "
                                 "mam-agent@agent-1.service` said: Unit mam-agent@x.service "
                                 "not found.")


@pytest.mark.parametrize(("units_present", "state", "expected"), [
    (True, "running", "systemd"), (True, "degraded", "systemd"), (True, "offline", "direct"),
    (False, "running", "direct"),
])
def test_auto_uses_systemd_only_where_it_runs_and_has_the_units(
    units_present: bool, state: str, expected: str, tmp_path: Path
) -> None:
    paths = fleet_paths(tmp_path, "linux")
    if units_present:
        paths.systemd_units_dir.mkdir(parents=True)
        (paths.systemd_units_dir / "mam-tmux-holder.service").write_text("[Unit]\n")
    runner = RecordingRunner({("systemctl", "--user", "is-system-running"):
                              Result(0 if state == "running" else 1, f"{state}\n", "")})
    chosen = managers.choose_manager("auto", runner, paths, roster(tmp_path), {})
    assert chosen.kind == expected


def macos(tmp_path: Path, holder_socket: str = "fleet-a") -> tuple[object, object]:
    """A macOS layout with the holder plist and the agent template as mam-install renders them."""
    paths = fleet_paths(tmp_path, "darwin")
    holder = paths.launch_agents_dir / "org.mam.tmux-holder.plist"
    holder.parent.mkdir(parents=True)
    holder.write_bytes(plistlib.dumps({"Label": "org.mam.tmux-holder", "EnvironmentVariables":
                                       {"MAM_TMUX_SOCKET": holder_socket}}))
    template = paths.templates_dir / "launchd" / "org.mam.agent.plist"
    template.parent.mkdir(parents=True)
    values = {"MAM_TOOLS_DIR": str(paths.tools_dir), "MAM_TMUX": "/opt/homebrew/bin/tmux",
              "MAM_TMUX_SOCKET": "mam", "MAM_STATE_DIR": str(tmp_path / "state"),
              "MAM_CONFIG_DIR": str(paths.config_dir), "MAM_HOME": str(paths.home),
              "MAM_LOG_DIR": str(tmp_path / "logs"), "MAM_PYTHON": sys.executable}
    text = (HOST / "units" / "launchd" / "org.mam.agent.plist").read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    template.write_text(text)
    return paths, values


def test_launchd_instantiates_one_plist_per_agent_on_the_rosters_socket(tmp_path: Path) -> None:
    paths, _values = macos(tmp_path)
    runner = RecordingRunner({("launchctl", "bootstrap"): Result(0)})
    manager = managers.LaunchdManager(runner, paths, roster(tmp_path, "fleet-a"), {})
    manager.start_agent("agent-2")
    plist = paths.launch_agents_dir / "org.mam.agent.agent-2.plist"
    job = plistlib.loads(plist.read_bytes())
    assert job["Label"] == "org.mam.agent.agent-2"
    assert job["ProgramArguments"] == [f"{paths.tools_dir}/start-agent-session.sh", "-w",
                                       "agent-2"]
    assert job["EnvironmentVariables"]["MAM_TMUX_SOCKET"] == "fleet-a"
    assert job["StandardOutPath"].endswith("/agent-agent-2.log")
    uid = os.getuid()
    assert runner.calls == [
        ["launchctl", "print", f"gui/{uid}/org.mam.agent.agent-2"],
        ["launchctl", "bootstrap", f"gui/{uid}", str(plist)],
    ]


def test_launchd_restart_kicks_and_stop_boots_out_exactly_that_agent(tmp_path: Path) -> None:
    paths, _ = macos(tmp_path)
    runner = RecordingRunner({("launchctl",): Result(0)})
    manager = managers.LaunchdManager(runner, paths, roster(tmp_path), {})
    manager.start_agent("agent-1")  # loaded already: kickstart, not a second bootstrap
    manager.restart_agent("agent-1")
    manager.stop_agent("agent-1")
    manager.start_holder()
    domain = f"gui/{os.getuid()}"
    assert runner.calls == [
        ["launchctl", "print", f"{domain}/org.mam.agent.agent-1"],
        ["launchctl", "kickstart", f"{domain}/org.mam.agent.agent-1"],
        ["launchctl", "kickstart", "-k", f"{domain}/org.mam.agent.agent-1"],
        ["launchctl", "bootout", f"{domain}/org.mam.agent.agent-1"],
        ["launchctl", "print", f"{domain}/org.mam.tmux-holder"],
        ["launchctl", "kickstart", f"{domain}/org.mam.tmux-holder"],
    ]


def test_a_user_edited_agent_plist_is_kept_and_ours_written_beside_it(tmp_path: Path) -> None:
    paths, _ = macos(tmp_path)
    manager = managers.LaunchdManager(RecordingRunner(), paths, roster(tmp_path), {})
    assert manager.place_agent_plist("agent-1") == "written"
    assert manager.place_agent_plist("agent-1") == "unchanged"
    plist = paths.launch_agents_dir / "org.mam.agent.agent-1.plist"
    job = plistlib.loads(plist.read_bytes())
    job["Nice"] = 5
    plist.write_bytes(plistlib.dumps(job))
    assert manager.place_agent_plist("agent-1") == "kept"
    assert plistlib.loads(plist.read_bytes())["Nice"] == 5
    beside = plist.with_name(plist.name + ".mam-new")
    assert "Nice" not in plistlib.loads(beside.read_bytes())


def test_fleet_start_under_systemd_writes_env_files_then_starts_holder_and_agents(
    tmp_path: Path
) -> None:
    paths = fleet_paths(tmp_path, "linux")
    runner = RecordingRunner({("systemctl",): Result(0)})
    fleet = context.Fleet(paths, runner, {}, tmp_path / "fleet.json", "systemd")
    fleet._roster = roster(tmp_path)
    fleet_cmds.start(fleet, None)
    assert runner.calls == [
        ["systemctl", "--user", "start", "mam-tmux-holder.service"],
        ["systemctl", "--user", "start", "mam-agent@agent-1.service"],
        ["systemctl", "--user", "start", "mam-agent@agent-2.service"],
    ]
    env = (paths.config_dir / "agents" / "agent-1.env").read_text()
    assert "MAM_TMUX_SOCKET='fleet-a'\n" in env
    assert f"MAM_AGENT_WORKDIR='{tmp_path}'\n" in env
    assert "MAM_AGENT_COMMAND='claude'\n" in env
    assert (paths.config_dir / "fleet.env").read_text().endswith(
        "MAM_TMUX_SOCKET='fleet-a'\nMAM_HOLDER_SESSION='mam-holder'\n")


def test_the_generated_env_files_mean_the_same_to_systemd_and_lib_sh(tmp_path: Path) -> None:
    """systemd reads them with EnvironmentFile=, the scripts with lib.sh: one meaning."""
    import shutil
    import subprocess

    analyze = shutil.which("systemd-analyze")
    paths = fleet_paths(tmp_path, "linux")
    fleet = context.Fleet(paths, RecordingRunner({("systemctl",): Result(0)}), {},
                          tmp_path / "fleet.json", "systemd")
    document = json.loads((HOST_TOOLS / "mam_fleet" / "examples" / "team.json").read_text())
    fleet._roster = roster_module.parse_roster(document, tmp_path / "fleet.json", tmp_path)
    fleet_cmds.start(fleet, None)
    env_file = paths.config_dir / "agents" / "orchestrator.env"
    script = f'. "{HOST_TOOLS / "lib.sh"}"; mam_load_env_file "{env_file}"; env'
    shell = subprocess.run(["sh", "-c", script], env={"PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True, timeout=30)
    seen = dict(line.split("=", 1) for line in shell.stdout.splitlines() if "=" in line)
    assert seen["MAM_AGENT_MODEL_HINT"] == "the strongest model available"
    assert seen["MAM_AGENT_WORKDIR"] == str(tmp_path / "src" / "project")
    if analyze is not None:
        unit = tmp_path / "units" / "probe.service"
        unit.parent.mkdir()
        unit.write_text(render(
            "[Service]\nEnvironmentFile=@F@\nExecStart=/bin/true\n", {"F": str(env_file)}))
        runtime = tmp_path / "runtime"
        runtime.mkdir(mode=0o700)
        verified = subprocess.run([analyze, "verify", "--user", str(unit)],
                                  env=dict(os.environ, XDG_RUNTIME_DIR=str(runtime)),
                                  capture_output=True, text=True, timeout=60)
        assert verified.returncode == 0, verified.stderr


def test_launchd_refuses_a_roster_socket_the_holder_does_not_hold(tmp_path: Path) -> None:
    paths, _ = macos(tmp_path, holder_socket="mam")
    runner = RecordingRunner({("launchctl",): Result(0)})
    manager = managers.LaunchdManager(runner, paths, roster(tmp_path, "fleet-a"), {})
    with pytest.raises(load_fleet_module("errors").PlatformError) as caught:
        manager.start_holder()
    assert "holds tmux -L mam, the roster names fleet-a" in str(caught.value)
    assert runner.calls == []


class OpensslForReal(RecordingRunner):
    """openssl runs for real (it is here); launchctl is recorded (it is not)."""

    def run(self, argv: Sequence[str], **kwargs: object) -> object:
        if argv[0] == "openssl":
            return runner_module.SubprocessRunner().run(argv, **kwargs)  # type: ignore[arg-type]
        return super().run(argv, **kwargs)  # type: ignore[arg-type]


def test_on_macos_broker_init_installs_and_bootstraps_a_launchd_job(tmp_path: Path) -> None:
    import shutil

    broker = load_fleet_module("broker")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (apt-get install openssl)")
    paths, _ = macos(tmp_path)
    broker_dir = paths.config_dir / "broker"
    broker_dir.mkdir(parents=True)
    values = {"MAM_CONFIG_DIR": str(paths.config_dir), "MAM_MQTT_PORT": "8883",
              "MAM_STATE_DIR": str(tmp_path / "state")}
    (broker_dir / "mosquitto.conf").write_text(
        render((HOST / "mosquitto" / "mam-broker.conf").read_text(), values))
    fake = tmp_path / "sbin"
    fake.mkdir()
    (fake / "mosquitto").write_text("#!/bin/sh\n")
    (fake / "mosquitto").chmod(0o755)
    runner = OpensslForReal()
    fleet = context.Fleet(paths, runner, {"PATH": f"{fake}:/usr/bin:/bin", "USER": "ann"},
                          tmp_path / "fleet.json", "launchd")
    broker.broker_init(fleet, [], [])
    plist = paths.launch_agents_dir / "org.mam.broker.plist"
    job = plistlib.loads(plist.read_bytes())
    assert job["ProgramArguments"] == [str(fake / "mosquitto"), "-c",
                                       str(broker_dir / "mosquitto.conf")]
    assert job["KeepAlive"] == {"SuccessfulExit": False}
    assert runner.calls[-1] == ["launchctl", "bootstrap", f"gui/{os.getuid()}", str(plist)]
