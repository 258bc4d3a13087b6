"""The per-user service manager: can we use systemd user units (or launchd) right now."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .._runner import CommandRunner, Completed

__all__ = ["InitInfo", "InitSystem", "detect_init", "systemd_state_from"]

InitSystem = Literal["systemd-user", "launchd", "none"]

# States of `systemctl --user is-system-running` in which the user manager answers requests.
# `degraded` (some unit failed) exits 1 but the manager works, hence judging the printed word.
USABLE_SYSTEMD_STATES = frozenset({"initializing", "starting", "running", "degraded"})
KNOWN_SYSTEMD_STATES = USABLE_SYSTEMD_STATES | {"maintenance", "stopping", "offline", "unknown"}


@dataclass(frozen=True)
class InitInfo:
    """``init`` names the service manager; ``reason`` says why user units cannot be used now."""

    init: InitSystem
    systemd_user_usable: bool
    systemd_state: str | None
    reason: str | None
    lingering: bool | None
    launchd_domain: str | None


def systemd_state_from(result: Completed) -> str | None:
    """The state word printed by ``systemctl --user is-system-running``, whatever its exit code.

    "Failed to connect to bus" and similar errors go to stderr with nothing on stdout: no state.
    """
    if result.timed_out:
        return None
    words = result.stdout.split()
    if len(words) == 1 and words[0] in KNOWN_SYSTEMD_STATES:
        return words[0]
    return None


def _is_ssh_session(env: Mapping[str, str]) -> bool:
    return any(env.get(name) for name in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"))


def _lingering(
    root: Path, user: str | None, env: Mapping[str, str], runner: CommandRunner
) -> bool | None:
    if not user:
        return None
    # logind keeps one flag file per lingering user; reading it costs no subprocess.
    if (root / "var" / "lib" / "systemd" / "linger" / user).exists():
        return True
    loginctl = shutil.which("loginctl", path=env.get("PATH", os.defpath))
    if loginctl is not None:
        result = runner.run([loginctl, "show-user", user, "-p", "Linger"], timeout=3.0, env=env)
        answer = result.stdout.strip()
        if result.ok and answer in ("Linger=yes", "Linger=no"):
            return answer == "Linger=yes"
    return False if (root / "var" / "lib" / "systemd" / "linger").is_dir() else None


def _systemd_user(
    root: Path, env: Mapping[str, str], runner: CommandRunner
) -> tuple[bool, str | None, str | None]:
    """(usable, printed state, reason it is not usable)."""
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if not runtime_dir:
        return False, None, "XDG_RUNTIME_DIR is not set (not a full login session)"
    systemctl = shutil.which("systemctl", path=env.get("PATH", os.defpath))
    if systemctl is None:
        return False, None, "systemctl is not on PATH"
    result = runner.run([systemctl, "--user", "is-system-running"], timeout=3.0, env=env)
    state = systemd_state_from(result)
    if state in USABLE_SYSTEMD_STATES:
        return True, state, None
    if result.timed_out:
        return False, None, "systemctl --user is-system-running timed out"
    if state is not None:
        return False, state, f"the user manager is {state}"
    said = (result.stderr or result.stdout).strip().splitlines()
    return False, None, said[0] if said else f"systemctl --user exited {result.returncode}"


def detect_init(
    system: str,
    *,
    env: Mapping[str, str],
    runner: CommandRunner,
    root: Path,
    uid: int,
    user: str | None,
) -> InitInfo:
    """Which user service manager this host has and whether it can be used from here."""
    if system == "darwin":
        domain = f"user/{uid}" if _is_ssh_session(env) else f"gui/{uid}"
        return InitInfo("launchd", False, None, None, None, domain)
    if system != "linux":
        return InitInfo("none", False, None, f"no systemd or launchd on {system}", None, None)
    # The same test as sd_booted(3): systemd is PID 1 only if this directory exists.
    if not (root / "run" / "systemd" / "system").is_dir():
        why = "systemd is not the init system (no /run/systemd/system)"
        return InitInfo("none", False, None, why, None, None)
    usable, state, reason = _systemd_user(root, env, runner)
    lingering = _lingering(root, user, env, runner)
    return InitInfo("systemd-user", usable, state, reason, lingering, None)
