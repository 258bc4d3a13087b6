"""Who starts and stops the holder and the agents: systemd --user, launchd, or mam itself.

Where a user manager runs, the units mam-install laid down do the work (and restart what
dies). Where none does (containers, CI, WSL without systemd) mam runs the same scripts
directly. Every command goes through the injected Runner, so tests record them.
"""

from __future__ import annotations

import hashlib
import os
import plistlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import MamError, PlatformError
from .paths import FleetPaths
from .roster import Roster
from .runner import Runner

HOLDER_UNIT = "mam-tmux-holder.service"
HOLDER_LABEL = "org.mam.tmux-holder"
# Settings a caller's own shell may hold that must not override the agent's env file.
_AGENT_SETTINGS = ("MAM_AGENT_WORKDIR", "MAM_AGENT_COMMAND", "MAM_AGENT_RUNTIME",
                   "MAM_AGENT_PASS_ENV", "MAM_ENV_FILE")


def agent_unit(name: str) -> str:
    return f"mam-agent@{name}.service"


def agent_label(name: str) -> str:
    return f"org.mam.agent.{name}"


class Manager:
    kind = "direct"

    def __init__(self, runner: Runner, paths: FleetPaths, roster: Roster,
                 env: Mapping[str, str]) -> None:
        self.runner, self.paths, self.roster, self.env = runner, paths, roster, env

    def _must(self, argv: Sequence[str], what: str, env: Mapping[str, str] | None = None,
              timeout: float = 60.0) -> None:
        done = self.runner.run(argv, env=env, timeout=timeout)
        if not done.ok:
            raise MamError(f"could not {what}: `{' '.join(argv)}` said: {done.said()}")

    def script_env(self) -> dict[str, str]:
        env = {k: v for k, v in self.env.items() if k not in _AGENT_SETTINGS}
        env.update(MAM_TMUX_SOCKET=self.roster.socket_name,
                   MAM_HOLDER_SESSION=self.roster.holder_session,
                   MAM_CONFIG_DIR=str(self.paths.config_dir),
                   MAM_STATE_DIR=str(self.paths.state_dir))
        return env

    # --- direct: the scripts, run by mam -----------------------------------------------------

    def start_holder(self) -> None:
        env = self.script_env()
        holder = str(self.paths.tool("mam-tmux-holder.sh"))
        tmux = self.env.get("MAM_TMUX") or "tmux"
        answers = [tmux, "-L", self.roster.socket_name, "display-message", "-p", "#{pid}"]
        if not self.runner.run(answers, env=env).ok:
            pid = self.runner.spawn([holder], env=env, log=self.paths.state_dir / "holder.log")
            self.paths.state_dir.mkdir(parents=True, exist_ok=True)
            (self.paths.state_dir / "holder.pid").write_text(f"{pid}\n")
        self._must([holder, "-w", "15"], "start the tmux holder", env)

    def stop_holder(self) -> None:
        self._must([str(self.paths.tool("mam-tmux-holder.sh")), "-k"], "stop the tmux holder",
                   self.script_env())

    def _agent_script(self, *args: str) -> list[str]:
        return [str(self.paths.tool("start-agent-session.sh")), *args]

    def start_agent(self, name: str) -> None:
        self._must(self._agent_script(name), f"start agent {name}", self.script_env())

    def stop_agent(self, name: str) -> None:
        self._must(self._agent_script("--stop", name), f"stop agent {name}", self.script_env())

    def restart_agent(self, name: str) -> None:
        self._must(self._agent_script("--replace", name), f"restart agent {name}",
                   self.script_env())

    def holder_state(self) -> str | None:
        return None

    def agent_state(self, name: str) -> str | None:
        return None

    def holder_owns(self, server_pid: int) -> bool:
        """Is the server on the socket the holder's? (direct: the holder mam spawned runs)."""
        try:
            pid = int((self.paths.state_dir / "holder.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return False
        return b"mam-tmux-holder.sh" in cmdline


class SystemdManager(Manager):
    kind = "systemd"

    def _systemctl(self, *args: str) -> list[str]:
        return ["systemctl", "--user", *args]

    def start_holder(self) -> None:
        self._must(self._systemctl("start", HOLDER_UNIT), "start the tmux holder")

    def stop_holder(self) -> None:
        self._must(self._systemctl("stop", HOLDER_UNIT), "stop the tmux holder")

    def start_agent(self, name: str) -> None:
        self._must(self._systemctl("start", agent_unit(name)), f"start agent {name}")

    def stop_agent(self, name: str) -> None:
        self._must(self._systemctl("stop", agent_unit(name)), f"stop agent {name}")

    def restart_agent(self, name: str) -> None:
        self._must(self._systemctl("restart", agent_unit(name)), f"restart agent {name}")

    def _state(self, unit: str) -> str | None:
        done = self.runner.run(self._systemctl("show", "-p", "ActiveState", "--value", unit))
        return done.stdout.strip() or None if done.ok else None

    def holder_state(self) -> str | None:
        return self._state(HOLDER_UNIT)

    def agent_state(self, name: str) -> str | None:
        return self._state(agent_unit(name))

    def holder_owns(self, server_pid: int) -> bool:
        try:
            cgroup = Path(f"/proc/{server_pid}/cgroup").read_text()
        except OSError:
            return False
        return f"/{HOLDER_UNIT}\n" in cgroup or cgroup.rstrip().endswith(f"/{HOLDER_UNIT}")


class LaunchdManager(Manager):
    kind = "launchd"

    @property
    def domain(self) -> str:
        return f"gui/{os.getuid()}"

    def _loaded(self, label: str) -> bool:
        return self.runner.run(["launchctl", "print", f"{self.domain}/{label}"]).ok

    def _bootstrap_or_kick(self, label: str, plist: Path, what: str) -> None:
        if self._loaded(label):
            self._must(["launchctl", "kickstart", f"{self.domain}/{label}"], what)
        else:
            self._must(["launchctl", "bootstrap", self.domain, str(plist)], what)

    def start_holder(self) -> None:
        plist = self.paths.launch_agents_dir / f"{HOLDER_LABEL}.plist"
        self._check_holder_socket(plist)
        self._bootstrap_or_kick(HOLDER_LABEL, plist, "start the tmux holder")

    def _check_holder_socket(self, plist: Path) -> None:
        """launchd has no env files: the holder's socket is the one mam-install wrote into its
        plist, and agents on another socket would start a server no holder owns."""
        try:
            job = plistlib.loads(plist.read_bytes())
        except (OSError, ValueError) as exc:
            raise PlatformError(f"{plist}: cannot read the holder's plist ({exc}); run "
                                "`mam-install install` again") from None
        held = job.get("EnvironmentVariables", {}).get("MAM_TMUX_SOCKET")
        if held != self.roster.socket_name:
            raise PlatformError(
                f"the holder ({plist}) holds tmux -L {held}, the roster names "
                f"{self.roster.socket_name}: set tmux.socket_name to {held!r}, or reinstall with "
                f"`MAM_TMUX_SOCKET={self.roster.socket_name} mam-install install`")

    def stop_holder(self) -> None:
        self._must(["launchctl", "bootout", f"{self.domain}/{HOLDER_LABEL}"],
                   "stop the tmux holder")

    def agent_plist(self, name: str) -> Path:
        return self.paths.launch_agents_dir / f"{agent_label(name)}.plist"

    def start_agent(self, name: str) -> None:
        self.place_agent_plist(name)
        self._bootstrap_or_kick(agent_label(name), self.agent_plist(name), f"start agent {name}")

    def stop_agent(self, name: str) -> None:
        self._must(["launchctl", "bootout", f"{self.domain}/{agent_label(name)}"],
                   f"stop agent {name}")

    def restart_agent(self, name: str) -> None:
        self._must(["launchctl", "kickstart", "-k", f"{self.domain}/{agent_label(name)}"],
                   f"restart agent {name}")

    def holder_state(self) -> str | None:
        return "loaded" if self._loaded(HOLDER_LABEL) else "not loaded"

    def agent_state(self, name: str) -> str | None:
        return "loaded" if self._loaded(agent_label(name)) else "not loaded"

    def holder_owns(self, server_pid: int) -> bool:
        return self._loaded(HOLDER_LABEL)

    def render_agent_plist(self, name: str) -> bytes:
        """mam-install's per-agent template, instantiated for ``name`` on the roster's socket."""
        template = self.paths.templates_dir / "launchd" / "org.mam.agent.plist"
        try:
            text = template.read_text()
        except OSError as exc:
            raise PlatformError(f"{template}: cannot read the agent plist template "
                                f"({exc.strerror}); run `mam-install install` again") from None
        job = plistlib.loads(text.replace("@MAM_AGENT_NAME@", name).encode())
        job.setdefault("EnvironmentVariables", {})["MAM_TMUX_SOCKET"] = self.roster.socket_name
        job.pop("MamGenerated", None)
        body = plistlib.dumps(job, sort_keys=True)
        job["MamGenerated"] = hashlib.sha256(body).hexdigest()
        return plistlib.dumps(job, sort_keys=True)

    def place_agent_plist(self, name: str) -> str:
        """Write the agent's plist unless the user edited ours; "written", "unchanged", "kept"."""
        path, data = self.agent_plist(name), self.render_agent_plist(name)
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            current = None
        if current == data:
            return "unchanged"
        if current is not None and not _generated_by_us(current):
            path.with_name(path.name + ".mam-new").write_bytes(data)
            return "kept"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return "written"


def _generated_by_us(data: bytes) -> bool:
    try:
        job = plistlib.loads(data)
    except Exception:
        return False
    digest = job.pop("MamGenerated", None) if isinstance(job, dict) else None
    return digest == hashlib.sha256(plistlib.dumps(job, sort_keys=True)).hexdigest()


def manager_kind(choice: str, runner: Runner, paths: FleetPaths,
                 unit: str | None = HOLDER_UNIT) -> str:
    """``choice`` auto|systemd|launchd|direct; auto picks the user manager that runs here (and,
    when ``unit`` is given, has that unit of mam-install's), else direct."""
    if choice != "auto":
        return choice
    if paths.system == "darwin":
        return "launchd"
    has_unit = unit is None or (paths.systemd_units_dir / unit).exists()
    return "systemd" if has_unit and _user_manager_runs(runner) else "direct"


def choose_manager(choice: str, runner: Runner, paths: FleetPaths, roster: Roster,
                   env: Mapping[str, str]) -> Manager:
    kinds = {"systemd": SystemdManager, "launchd": LaunchdManager, "direct": Manager}
    return kinds[manager_kind(choice, runner, paths)](runner, paths, roster, env)


def _user_manager_runs(runner: Runner) -> bool:
    done = runner.run(["systemctl", "--user", "is-system-running"], timeout=10)
    return done.stdout.strip() in ("running", "degraded", "starting", "initializing")
