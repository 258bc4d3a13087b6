"""The systemd units and launchd plists render, verify and say what launchd and systemd need."""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.payload._fixtures import tls_broker, tmux_server
from tests.payload._support import HOST, Broker, Tmux, copy_tools, render
from tests.waiting import wait_for

SYSTEMD = HOST / "units" / "systemd"
LAUNCHD = HOST / "units" / "launchd"
UNITS = sorted(p.name for p in SYSTEMD.glob("*.service"))
PLISTS = sorted(p.name for p in LAUNCHD.glob("*.plist"))


def values(tmp_path: Path) -> dict[str, str]:
    tools = copy_tools(tmp_path / "tools")
    return {
        "MAM_TOOLS_DIR": str(tools),
        "MAM_PYTHON": sys.executable,
        "MAM_TMUX": shutil.which("tmux") or "/usr/bin/tmux",
        "MAM_TMUX_SOCKET": "mam-test",
        "MAM_STATE_DIR": str(tmp_path / "state"),
        "MAM_CONFIG_DIR": str(tmp_path / "config"),
        "MAM_HOME": str(tmp_path / "home"),
        "MAM_LOG_DIR": str(tmp_path / "logs"),
        "MAM_AGENT_NAME": "alice",
    }


@pytest.fixture
def rendered_units(tmp_path: Path) -> Path:
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    filled = values(tmp_path)
    for unit in SYSTEMD.glob("*.service"):
        (unit_dir / unit.name).write_text(render(unit.read_text(), filled))
    return unit_dir


def test_the_three_units_are_shipped() -> None:
    assert UNITS == ["mam-agent@.service", "mam-mqtt-monitor.service", "mam-tmux-holder.service"]


@pytest.mark.parametrize("unit", ["mam-tmux-holder.service", "mam-agent@alice.service",
                                  "mam-mqtt-monitor.service"])
def test_each_unit_passes_systemd_analyze_verify_silently(
    unit: str, rendered_units: Path, tmp_path: Path
) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (it comes with systemd)")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime),
               SYSTEMD_UNIT_PATH=f"{rendered_units}{os.pathsep}")
    # A template is verified through an instance, looked up on SYSTEMD_UNIT_PATH.
    target = unit if "@" in unit and not unit.endswith("@.service") else str(rendered_units / unit)
    result = subprocess.run([analyze, "verify", "--user", target], env=env,
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_verify_would_catch_a_broken_unit(rendered_units: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (it comes with systemd)")
    broken = rendered_units / "mam-broken.service"
    broken.write_text((rendered_units / "mam-tmux-holder.service").read_text()
                      .replace("Restart=on-failure", "Restart=on-failure\nRestrat=always"))
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    result = subprocess.run([analyze, "verify", "--user", str(broken)],
                            env=dict(os.environ, XDG_RUNTIME_DIR=str(runtime)),
                            capture_output=True, text=True, timeout=60)
    assert "Restrat" in result.stdout + result.stderr


def unit_lines(name: str) -> list[str]:
    return [line.strip() for line in (SYSTEMD / name).read_text().splitlines()]


def test_the_agent_unit_is_bound_to_the_holder_and_stops_only_its_session() -> None:
    lines = unit_lines("mam-agent@.service")
    for wanted in ("Requires=mam-tmux-holder.service", "After=mam-tmux-holder.service",
                   "PartOf=mam-tmux-holder.service",
                   "EnvironmentFile=-@MAM_CONFIG_DIR@/fleet.env",
                   "EnvironmentFile=-@MAM_CONFIG_DIR@/agents/%i.env",
                   "ExecStop=-@MAM_TOOLS_DIR@/start-agent-session.sh -k %i"):
        assert wanted in lines
    # The per-agent file comes last, so it wins; no Exec line names a socket of its own.
    assert lines.index("EnvironmentFile=-@MAM_CONFIG_DIR@/agents/%i.env") > lines.index(
        "EnvironmentFile=-@MAM_CONFIG_DIR@/fleet.env")
    assert not [line for line in lines if line.startswith("Exec") and "-L" in line.split()]


def test_the_holder_stops_only_its_named_server() -> None:
    lines = unit_lines("mam-tmux-holder.service")
    assert "ExecStop=-@MAM_TOOLS_DIR@/mam-tmux-holder.sh -k" in lines
    assert "EnvironmentFile=-@MAM_CONFIG_DIR@/fleet.env" in lines
    assert "kill-server" not in "\n".join(line for line in lines if not line.startswith("#"))


@pytest.mark.parametrize("template", sorted([*SYSTEMD.glob("*.service"), *LAUNCHD.glob("*.plist")]))
def test_no_unit_hard_codes_the_installers_interpreter(template: Path) -> None:
    assert "@MAM_PYTHON@" not in template.read_text()


@pytest.mark.parametrize("plist", PLISTS)
def test_each_plist_parses_and_has_what_launchd_needs(plist: str, tmp_path: Path) -> None:
    filled = values(tmp_path)
    data = plistlib.loads(render((LAUNCHD / plist).read_text(), filled).encode())
    assert data["Label"] == plist.removesuffix(".plist").replace(".agent", ".agent.alice")
    program = data["ProgramArguments"]
    assert isinstance(program, list) and program
    assert all(isinstance(arg, str) for arg in program)
    assert Path(program[0]).is_file() and os.access(program[0], os.X_OK)
    if program[0] == sys.executable:
        assert Path(program[1]).is_file()
    assert data["RunAtLoad"] is True
    assert data["KeepAlive"] == {"SuccessfulExit": False}
    env = data["EnvironmentVariables"]
    assert env["MAM_TMUX_SOCKET"] == "mam-test"
    assert env["MAM_TMUX"] == filled["MAM_TMUX"]
    assert data["StandardOutPath"].startswith(filled["MAM_LOG_DIR"] + "/")
    assert data["StandardErrorPath"].startswith(filled["MAM_LOG_DIR"] + "/")
    assert data["WorkingDirectory"] == filled["MAM_HOME"]


def test_the_plists_are_the_equivalents_of_the_units() -> None:
    assert PLISTS == ["org.mam.agent.plist", "org.mam.mqtt-monitor.plist",
                      "org.mam.tmux-holder.plist"]


def test_the_broker_config_is_private_tls_with_passwords_and_acls() -> None:
    lines = [line.strip() for line in (HOST / "mosquitto" / "mam-broker.conf").read_text()
             .splitlines() if line.strip() and not line.startswith("#")]
    for wanted in ("allow_anonymous false", "listener @MAM_MQTT_PORT@ 127.0.0.1",
                   "password_file @MAM_CONFIG_DIR@/broker/passwd",
                   "acl_file @MAM_CONFIG_DIR@/broker/mam-broker.acl",
                   "certfile @MAM_CONFIG_DIR@/broker/server.crt"):
        assert wanted in lines
    acl = (HOST / "mosquitto" / "mam-broker.acl").read_text()
    assert "pattern readwrite mam/%u/#" in acl.splitlines()


# --- the units' commands, run the way systemd would run them -------------------------------------

tmux = pytest.fixture(name="tmux")(tmux_server)


@dataclass
class ServiceCommands:
    """The environment and Exec* lines of one rendered unit, with %i and %h expanded."""

    env: dict[str, str]
    execs: dict[str, list[list[str]]]


def service_commands(text: str, instance: str, home: Path) -> ServiceCommands:
    env: dict[str, str] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    execs: dict[str, list[list[str]]] = {}
    for line in text.replace("%i", instance).replace("%h", str(home)).splitlines():
        key, _, value = line.partition("=")
        if key == "Environment":
            name, _, setting = value.partition("=")
            env[name] = setting
        elif key == "EnvironmentFile":
            path = Path(value.lstrip("-"))
            if path.is_file():
                for entry in path.read_text().splitlines():
                    if "=" in entry and not entry.startswith("#"):
                        name, _, setting = entry.partition("=")
                        env[name] = setting
        elif key.startswith("Exec"):
            execs.setdefault(key, []).append(shlex.split(value.lstrip("-")))
    return ServiceCommands(env, execs)


def test_holder_and_agent_unit_commands_start_and_stop_exactly_their_things(
    tmux: Tmux, tmp_path: Path
) -> None:
    # Rendered with another socket: the one in fleet.env (from the roster) must be used.
    filled = dict(values(tmp_path), MAM_TMUX_SOCKET=f"{tmux.socket_name}-rendered")
    home = tmp_path / "home"
    workdir = home / "project"
    workdir.mkdir(parents=True)
    agents = Path(filled["MAM_CONFIG_DIR"]) / "agents"
    agents.mkdir(parents=True)
    (agents.parent / "fleet.env").write_text(
        f"MAM_TMUX_SOCKET={tmux.socket_name}\nMAM_HOLDER_SESSION=mam-holder\n")
    (agents / "alice.env").write_text(f"MAM_AGENT_WORKDIR={workdir}\nMAM_AGENT_COMMAND=exec cat\n")
    holder = service_commands(render((SYSTEMD / "mam-tmux-holder.service").read_text(), filled),
                              "", home)
    agent = service_commands(render((SYSTEMD / "mam-agent@.service").read_text(), filled),
                             "alice", home)
    assert agent.env["MAM_AGENT_WORKDIR"] == str(workdir)  # the env file wins, as in systemd

    held = subprocess.Popen(holder.execs["ExecStart"][0], env=holder.env, cwd=home,
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        post = subprocess.run(holder.execs["ExecStartPost"][0], env=holder.env, cwd=home,
                              capture_output=True, timeout=30)
        assert post.returncode == 0, post.stderr
        tmux.new_session("alice0", "sleep", "60")
        running = subprocess.Popen(agent.execs["ExecStart"][0],
                                   env=dict(agent.env, MAM_AGENT_POLL_SECONDS="0.2"), cwd=home,
                                   stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: "alice" in tmux.sessions(), what="the agent's session")
        pane_path = tmux("display-message", "-p", "-t", "=alice:", "#{pane_current_path}")
        assert pane_path.stdout.strip() == str(workdir)
        subprocess.run(agent.execs["ExecStop"][0], env=agent.env, timeout=30, check=True)
        assert running.wait(timeout=10) in (0, 1)
        assert tmux.sessions() == {"alice0", "mam-holder"}
        subprocess.run(holder.execs["ExecStop"][0], env=holder.env, timeout=30, check=True)
        held.send_signal(signal.SIGTERM)  # what systemd sends after ExecStop
        assert held.wait(timeout=10) in (0, 1)
        assert tmux("list-sessions", check=False).returncode != 0
    finally:
        if held.poll() is None:
            held.kill()


broker = pytest.fixture(name="broker", scope="module")(tls_broker)


def test_monitor_unit_command_reads_its_settings_file_and_listens(
    broker: Broker, tmux: Tmux, tmp_path: Path
) -> None:
    # The Python that ran the installer is gone; the unit must take MAM_PYTHON from mqtt.env.
    filled = dict(values(tmp_path), MAM_TMUX_SOCKET=tmux.socket_name,
                  MAM_PYTHON=str(tmp_path / "gone" / "python3"))
    config = Path(filled["MAM_CONFIG_DIR"])
    config.mkdir(parents=True)
    settings = dict(broker.env(Path(filled["MAM_STATE_DIR"])), MAM_PYTHON=sys.executable)
    (config / "mqtt.env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    monitor = service_commands(render((SYSTEMD / "mam-mqtt-monitor.service").read_text(),
                                      filled), "", tmp_path / "home")
    assert not any(key.startswith("MAM_MQTT") for key in monitor.env)  # only from mqtt.env
    command = [*monitor.execs["ExecStart"][0], "--timeout", "0.5"]
    ran = subprocess.run(command, env=monitor.env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert f"listening on mam/alice/jobs/+/events at 127.0.0.1:{broker.port}" in ran.stderr


def test_agent_plist_program_starts_the_session_and_sigterm_ends_exactly_it(
    tmux: Tmux, tmp_path: Path
) -> None:
    filled = dict(values(tmp_path), MAM_TMUX_SOCKET=tmux.socket_name)
    Path(filled["MAM_HOME"]).mkdir(parents=True)
    job = plistlib.loads(render((LAUNCHD / "org.mam.agent.plist").read_text(), filled).encode())
    env = dict(job["EnvironmentVariables"], HOME=filled["MAM_HOME"], MAM_AGENT_COMMAND="exec cat",
               MAM_AGENT_POLL_SECONDS="0.2")
    env["PATH"] = f"{env['PATH']}{os.pathsep}{os.environ.get('PATH', '')}"
    tmux.new_session("alice0", "sleep", "60")
    agent = subprocess.Popen(job["ProgramArguments"], env=env, cwd=job["WorkingDirectory"],
                             stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: "alice" in tmux.sessions(), what="the agent's session")
    assert tmux.sessions() == {"alice", "alice0"}
    agent.send_signal(signal.SIGTERM)  # launchctl bootout: there is no ExecStop on macOS
    assert agent.wait(timeout=10) == 0
    assert tmux.sessions() == {"alice0"}


def test_the_python_wrapper_fails_loudly_without_an_interpreter(tmp_path: Path) -> None:
    tools = copy_tools(tmp_path / "tools")
    settings = tmp_path / "mqtt.env"
    settings.write_text(f"MAM_PYTHON={tmp_path / 'gone' / 'python3'}\n")
    ran = subprocess.run([str(tools / "mam-python.sh"), str(tools / "mam_mqtt.py"), "--help"],
                         env={"PATH": "/usr/bin:/bin", "MAM_ENV_FILE": str(settings),
                              "HOME": str(tmp_path)},
                         capture_output=True, text=True, timeout=30)
    assert ran.returncode == 69
    assert "set MAM_PYTHON in" in ran.stderr and str(settings) in ran.stderr
