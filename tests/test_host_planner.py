"""The host planner and layout: what lands where, per OS, per option, and what is only said.

The helpers at the top (``host_release``, ``fake_host``, ``staged``) are shared with
test_cmd_host.py.
"""

from __future__ import annotations

import dataclasses
import os
import plistlib
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from mam_install._errors import UsageError
from mam_install._feedback import ConsoleFeedback
from mam_install._runner import RecordingRunner
from mam_install.actions._file_actions import CreateDirectory, KeepFile, WriteFile
from mam_install.actions._host_actions import AddRcBlock, RunCommand
from mam_install.engine._action import Action
from mam_install.machine._detect import Host, PythonInfo, TmuxInfo, WorkspaceInfo, detect
from mam_install.machine._host_layout import host_layout
from mam_install.machine._shells import RcFile
from mam_install.release._sources import SourceSpec, Staged, stage_source
from mam_install.release._staging import Staging
from mam_install.scopes._env_scripts import env_fish, env_sh
from mam_install.scopes._host_planner import host_settings, plan_host
from mam_install.scopes._start_hints import start_hints
from workspaces import make_release, pinned

PAYLOAD_HOST = Path(__file__).resolve().parent.parent / "payload" / "host"
TMUX = shutil.which("tmux") or "/usr/bin/tmux"


def real_host_files() -> dict[str, tuple[bytes, int]]:
    """payload/host as a make_release file map (symlinked tools read as their targets)."""
    files: dict[str, tuple[bytes, int]] = {}
    for path in sorted(PAYLOAD_HOST.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            files[f"host/{path.relative_to(PAYLOAD_HOST)}"] = (path.read_bytes(), mode)
    files["workspace/AGENT.md"] = (b"# agents\n", 0o644)
    return files


@pytest.fixture(scope="session", name="host_release")
def host_release_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """1.0.0 is the real payload/host; 2.0.0 changes one tool; 0.9.0 is older."""
    base = tmp_path_factory.mktemp("host-releases")
    v1 = real_host_files()
    v2 = dict(v1)
    v2["host/tools/mam-tmux-holder.sh"] = (v1["host/tools/mam-tmux-holder.sh"][0] + b"# v2\n",
                                           0o755)
    return {
        "0.9.0": make_release(base, v1, "0.9.0"),
        "1.0.0": make_release(base, v1, "1.0.0"),
        "2.0.0": make_release(base, v2, "2.0.0"),
    }


@contextmanager
def staged(release: Path) -> Iterator[tuple[Staged, Staging]]:
    with Staging() as staging:
        yield stage_source(SourceSpec(*pinned(release)[1::2]), staging), staging


def fake_host(home: Path, **changes: Any) -> Host:
    """This machine as detect() sees it with every command failing, then made predictable."""
    runner = RecordingRunner()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    host = detect(runner=runner, env=env, home=home, system="linux")
    rc_files = tuple(
        RcFile(home / name, family, os.path.lexists(home / name), (home / name).is_symlink())
        for name, family in ((".profile", "sh"), (".bashrc", "bash"))
    )
    defaults: dict[str, Any] = {
        "os": "linux",
        "init": "systemd-user",
        "systemd_user_usable": True,
        "init_reason": None,
        "lingering": True,
        "tmux": TmuxInfo(True, TMUX, "3.3a"),
        "python": PythonInfo(sys.executable, "3.11.2"),
        "mqtt_client": True,
        "rc_files": rc_files,
        "workspace": WorkspaceInfo(str(home / "ws"), "ext4", False, "/", "mountinfo"),
    }
    defaults.update(changes)
    return dataclasses.replace(host, **defaults)


@dataclasses.dataclass(frozen=True)
class Opts:
    no_units: bool = False
    no_modify_path: bool = False
    enable_units: bool = False


def point_home_at(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and every XDG base dir below ``home`` (created), as on a fresh account."""
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (("XDG_DATA_HOME", ".local/share"), ("XDG_STATE_HOME", ".local/state"),
                     ("XDG_CACHE_HOME", ".cache"), ("XDG_CONFIG_HOME", ".config")):
        monkeypatch.setenv(var, str(home / sub))
    for var in ("XDG_RUNTIME_DIR", "MAM_TMUX_SOCKET", "MAM_MQTT_PORT", "CI"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return point_home_at(tmp_path / "home", monkeypatch)


def plan(
    release: Path, host: Host, options: Opts = Opts(), *, env: Mapping[str, str] | None = None,
    system: str = "linux", network_fs: bool | None = False,
) -> tuple[list[Action], dict[str, Path], ConsoleFeedback, dict[str, bytes]]:
    """Plan, and read every planned source while staging still exists."""
    feedback = ConsoleFeedback(verbosity=-1)
    env = {"PATH": "/usr/bin:/bin"} if env is None else env
    layout = host_layout(network_fs=network_fs, system=system, home=host.home, env=env)
    with staged(release) as (stage, staging):
        actions, sources = plan_host(host, stage.payload, layout, None, options,
                                     staging.path / "r", env=env, feedback=feedback)
        contents = {key: path.read_bytes() for key, path in sources.items()}
    return actions, sources, feedback, contents


def writes(actions: list[Action]) -> dict[str, WriteFile]:
    return {"/" + a.path: a for a in actions if isinstance(a, WriteFile)}


def test_linux_plan_writes_tools_units_env_scripts_and_broker_config(host_release, home):
    actions, sources, _, contents = plan(host_release["1.0.0"], fake_host(home))
    written = writes(actions)
    data = home / ".local/share/mam"
    tools = PAYLOAD_HOST / "tools"
    for tool in tools.rglob("*"):
        if not tool.is_dir() and "__pycache__" not in tool.parts:
            assert str(data / "bin" / tool.relative_to(tools)) in written
    for unit in os.listdir(PAYLOAD_HOST / "units/systemd"):
        assert str(home / ".config/systemd/user" / unit) in written
    assert str(data / "env.sh") in written and str(data / "env.fish") in written
    assert str(home / ".config/mam/broker/mosquitto.conf") in written
    assert not any(".plist" in path for path in written)
    holder = written[str(data / "bin/mam-tmux-holder.sh")]
    assert holder.mode == 0o755 and sources[holder.source].is_absolute()
    assert all(a.base == "/" for a in actions if isinstance(a, (WriteFile, CreateDirectory)))
    unit = contents[written[str(home / ".config/systemd/user/mam-tmux-holder.service")].source]
    assert b"@MAM_" not in unit
    assert f"ExecStart={data}/bin/mam-tmux-holder.sh\n".encode() in unit
    assert f"Environment=MAM_TMUX={TMUX}\n".encode() in unit
    assert b"Environment=MAM_TMUX_SOCKET=mam\n" in unit


def test_directories_are_created_below_the_nearest_existing_ancestor(host_release, home):
    actions, *_ = plan(host_release["1.0.0"], fake_host(home))
    created = ["/" + a.path for a in actions if isinstance(a, CreateDirectory)]
    assert str(home / ".config/systemd") in created
    assert created.index(str(home / ".config")) < created.index(str(home / ".config/systemd"))
    assert str(home) not in created  # it existed


def test_a_symlinked_home_is_followed_to_its_real_path(host_release, tmp_path, monkeypatch):
    real = tmp_path / "usr-home"
    real.mkdir()
    link = tmp_path / "home-link"
    link.symlink_to(real)
    point_home_at(link, monkeypatch)
    actions, *_ = plan(host_release["1.0.0"], fake_host(link))
    written = writes(actions)
    assert str(real / ".local/share/mam/bin/lib.sh") in written
    assert not any(path.startswith(str(link)) for path in written)


def test_the_macos_plan_writes_plists_and_keeps_the_per_agent_one_out_of_launchagents(
    host_release, home
):
    host = fake_host(home, os="darwin", init="launchd", systemd_user_usable=False,
                     launchd_domain="gui/501")
    actions, _, _, contents = plan(host_release["1.0.0"], host, Opts(enable_units=True),
                                   system="darwin")
    written = writes(actions)
    agents = home / "Library/LaunchAgents"
    data = home / "Library/Application Support/mam"
    assert str(agents / "org.mam.tmux-holder.plist") in written
    assert str(agents / "org.mam.mqtt-monitor.plist") in written
    assert str(agents / "org.mam.agent.plist") not in written
    assert str(data / "templates/launchd/org.mam.agent.plist") in written
    assert not any(path.endswith(".service") for path in written)
    holder = plistlib.loads(contents[written[str(agents / "org.mam.tmux-holder.plist")].source])
    assert holder["ProgramArguments"] == [f"{data}/bin/mam-tmux-holder.sh"]
    assert holder["StandardOutPath"].startswith(str(home / "Library/Logs/mam"))
    commands = [a for a in actions if isinstance(a, RunCommand)]
    assert [c.argv for c in commands] == [
        ["launchctl", "bootstrap", "gui/501", str(agents / "org.mam.tmux-holder.plist")]
    ]
    assert commands[0].revert_argv == ["launchctl", "bootout", "gui/501/org.mam.tmux-holder"]


def test_freebsd_gets_tools_but_no_units_and_a_hint_to_start_by_hand(host_release, home):
    host = fake_host(home, os="freebsd", init="none", systemd_user_usable=False)
    actions, *_ = plan(host_release["1.0.0"], host, system="freebsd")
    written = writes(actions)
    assert not any(p.endswith((".service", ".plist")) for p in written)
    assert any(p.endswith("/bin/mam-tmux-holder.sh") for p in written)
    layout = host_layout(system="freebsd", home=home)
    [hint] = start_hints(host, layout, actions)
    assert "mam-tmux-holder.sh" in hint and "nohup" in hint


def test_no_units_plans_no_unit_file_and_no_command(host_release, home):
    actions, *_ = plan(host_release["1.0.0"], fake_host(home), Opts(no_units=True))
    assert not any(p.endswith(".service") for p in writes(actions))
    assert not any(isinstance(a, RunCommand) for a in actions)


@pytest.mark.parametrize("usable", [True, False])
def test_daemon_reload_is_planned_only_where_the_user_manager_works(host_release, home, usable):
    host = fake_host(home, systemd_user_usable=usable, init_reason=None if usable else "no bus")
    actions, *_ = plan(host_release["1.0.0"], host, Opts(enable_units=True))
    argvs = [a.argv for a in actions if isinstance(a, RunCommand)]
    if usable:
        assert argvs == [["systemctl", "--user", "daemon-reload"],
                         ["systemctl", "--user", "enable", "--now", "mam-tmux-holder.service"]]
        assert isinstance(actions[-1], RunCommand)  # after every file
    else:
        assert argvs == []
        [hint] = start_hints(host, host_layout(home=home), actions)
        assert "systemctl --user daemon-reload && systemctl --user enable --now" in hint


def test_one_rc_block_per_rc_file_and_a_fish_file(host_release, home):
    (home / ".bashrc").write_bytes(b"# mine\n")
    fish = home / ".config/fish/conf.d/mam.fish"
    host = fake_host(home)
    host = dataclasses.replace(host, rc_files=(*host.rc_files, RcFile(fish, "fish", False, False)))
    actions, _, _, contents = plan(host_release["1.0.0"], host)
    blocks = [a for a in actions if isinstance(a, AddRcBlock)]
    assert [b.path for b in blocks] == [str(home / ".profile"), str(home / ".bashrc")]
    assert all(b.env_script == str(home / ".local/share/mam/env.sh") for b in blocks)
    fish_write = writes(actions)[str(fish)]
    assert str(home / ".local/share/mam/env.fish").encode() in contents[fish_write.source]


def test_no_modify_path_plans_no_block_and_no_fish_file_but_the_env_scripts(host_release, home):
    actions, _, feedback, _ = plan(host_release["1.0.0"], fake_host(home),
                                   Opts(no_modify_path=True))
    assert any("--no-modify-path: no shell rc file was touched" in line
               for line in feedback._log_lines)
    assert not any(isinstance(a, AddRcBlock) for a in actions)
    assert not any(p.endswith("mam.fish") for p in writes(actions))
    # The user is told to source them, so they must exist (issue 13).
    assert sum(p.endswith(("env.sh", "env.fish")) for p in writes(actions)) == 2


def test_a_tools_dir_already_on_path_adds_no_block_and_says_so(host_release, home):
    tools = home / ".local/share/mam/bin"
    env = {"PATH": f"/usr/bin:{tools}/:/bin"}
    actions, _, feedback, _ = plan(host_release["1.0.0"], fake_host(home), env=env)
    assert not any(isinstance(a, AddRcBlock) for a in actions)
    log = "\n".join(feedback._log_lines)
    assert f"{tools} is already on PATH" in log


def test_a_symlinked_bashrc_gets_a_skipped_action_and_a_warning(host_release, home, tmp_path):
    target = tmp_path / "dotfiles-bashrc"
    target.write_bytes(b"# dotfiles\n")
    (home / ".bashrc").symlink_to(target)
    actions, _, feedback, _ = plan(host_release["1.0.0"], fake_host(home))
    [bashrc] = [a for a in actions if isinstance(a, AddRcBlock) and a.path.endswith(".bashrc")]
    assert bashrc.state == "skipped"
    assert any(".bashrc was left alone" in w and "symlink" in w for w in feedback.warnings)


@pytest.mark.parametrize("network_fs", [True, None])
def test_a_network_workspace_moves_state_to_the_runtime_dir_and_records_it(
    host_release, home, tmp_path, network_fs
):
    runtime = tmp_path / "run-user"
    runtime.mkdir()
    env = {"PATH": "/usr/bin", "XDG_RUNTIME_DIR": str(runtime)}
    host = fake_host(home, workspace=WorkspaceInfo(str(tmp_path / "nfs-ws"), "nfs4" if
                                                   network_fs else None, network_fs, None, "x"))
    actions, _, feedback, contents = plan(host_release["1.0.0"], host, env=env,
                                          network_fs=network_fs)
    unit = writes(actions)[str(home / ".config/systemd/user/mam-mqtt-monitor.service")]
    assert f"Environment=MAM_STATE_DIR={runtime}/mam\n".encode() in contents[unit.source]
    assert any(f"go to {runtime}/mam" in line for line in feedback._log_lines)
    layout = host_layout(network_fs=network_fs, home=home, env=env)
    settings = host_settings(host, layout, Opts(), env)
    assert settings["state_dir"] == str(runtime / "mam")
    assert settings["workspace_network_fs"] is network_fs


def test_a_local_workspace_keeps_state_in_the_user_state_dir(home, tmp_path):
    env = {"XDG_RUNTIME_DIR": str(tmp_path)}
    layout = host_layout(network_fs=False, home=home, env=env)
    assert layout.state_dir == home / ".local/state/mam"
    assert layout.data_dir == home / ".local/share/mam"
    assert layout.units_dir == home / ".config/systemd/user"
    assert layout.scope.receipt == home / ".local/share/mam/install-receipt.json"


def test_the_units_dir_follows_xdg_config_home(home, tmp_path):
    layout = host_layout(home=home, env={"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert layout.units_dir == tmp_path / "cfg/systemd/user"
    assert layout.config_dir == tmp_path / "cfg/mam"


def test_without_tmux_the_units_are_not_planned_and_the_user_is_told(host_release, home):
    host = fake_host(home, tmux=TmuxInfo(False, None, None))
    actions, _, feedback, _ = plan(host_release["1.0.0"], host)
    assert not any(p.endswith(".service") for p in writes(actions))
    assert any("tmux is not installed" in w for w in feedback.warnings)


def test_a_data_dir_with_a_space_skips_systemd_units_with_the_reason(
    host_release, home, monkeypatch
):
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "my data"))
    actions, _, feedback, _ = plan(host_release["1.0.0"], fake_host(home))
    written = writes(actions)
    assert not any(p.endswith(".service") for p in written)
    assert str(home / "my data/mam/bin/lib.sh") in written
    assert any("units were not installed" in w and "XDG_DATA_HOME" in w
               for w in feedback.warnings)


def test_a_python_without_paho_is_named_with_the_fix(host_release, home):
    host = fake_host(home, mqtt_client=False)
    _, _, feedback, _ = plan(host_release["1.0.0"], host)
    # The same fix doctor gives (pip --user, pip in a venv, or the distro's package).
    assert any("paho" in w and host.python.executable in w for w in feedback.warnings)


def test_a_bad_tmux_socket_name_is_a_usage_error(host_release, home, monkeypatch):
    with pytest.raises(UsageError, match="MAM_TMUX_SOCKET"):
        plan(host_release["1.0.0"], fake_host(home), env={"MAM_TMUX_SOCKET": "a b"})


def test_the_socket_name_comes_from_mam_tmux_socket(host_release, home):
    actions, _, _, contents = plan(host_release["1.0.0"], fake_host(home),
                                   env={"MAM_TMUX_SOCKET": "team-7"})
    unit = writes(actions)[str(home / ".config/systemd/user/mam-tmux-holder.service")]
    assert b"\nEnvironment=MAM_TMUX_SOCKET=team-7\n" in contents[unit.source]


def test_an_existing_different_unit_is_kept_and_ours_goes_beside_it(host_release, home):
    units = home / ".config/systemd/user"
    units.mkdir(parents=True)
    (units / "mam-tmux-holder.service").write_bytes(b"[Service]\nExecStart=/bin/mine\n")
    actions, *_ = plan(host_release["1.0.0"], fake_host(home), Opts(enable_units=True))
    keep = [a for a in actions if isinstance(a, KeepFile) and a.new_path]
    assert [k.path.rsplit("/", 1)[1] for k in keep] == ["mam-tmux-holder.service"]
    assert str(units / "mam-tmux-holder.service.mam-new") in writes(actions)
    # Never enable the user's own unit in mam's name.
    assert not any(isinstance(a, RunCommand) and "enable" in a.argv for a in actions)


SHELLS = ["sh", "dash", "bash", "zsh", "ksh"]


@pytest.mark.parametrize("shell", SHELLS)
def test_the_env_script_puts_the_tools_dir_on_path_once_in_every_shell(shell, tmp_path):
    binary = shutil.which(shell)
    if binary is None:
        pytest.skip(f"{shell} is not installed")
    tools = tmp_path / "it's data" / "bin"
    script = tmp_path / "env.sh"
    script.write_bytes(env_sh(tools))
    quoted = "'" + str(script).replace("'", "'\\''") + "'"
    result = subprocess.run([binary, "-c", f". {quoted}; . {quoted}; printf %s \"$PATH\""],
                            env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                            timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{tools}:/usr/bin:/bin"


def test_the_fish_env_script_puts_the_tools_dir_on_path_once(tmp_path):
    fish = shutil.which("fish")
    if fish is None:
        pytest.skip("fish is not installed")
    tools = tmp_path / "it's data" / "bin"
    script = tmp_path / "env.fish"
    script.write_bytes(env_fish(tools))
    quoted = "'" + str(script).replace("\\", "\\\\").replace("'", "\\'") + "'"
    result = subprocess.run(
        [fish, "--no-config", "-c", f"source {quoted}; source {quoted}; string join : $PATH"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, capture_output=True, text=True,
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{tools}:/usr/bin:/bin"


def test_the_env_script_passes_shellcheck(tmp_path):
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    script = tmp_path / "env.sh"
    script.write_bytes(env_sh(tmp_path / "bin"))
    result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, "")
