"""The user's shell and the rc files that should source mam's PATH snippet."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .._runner import CommandRunner

__all__ = ["RcFile", "ShellFamily", "ShellInfo", "detect_shell", "plan_rc_files", "shell_family"]

ShellFamily = Literal["sh", "bash", "zsh", "fish"]

_FAMILIES: dict[str, ShellFamily] = {
    "sh": "sh",
    "dash": "sh",
    "ash": "sh",
    "busybox": "sh",
    "ksh": "sh",
    "ksh93": "sh",
    "mksh": "sh",
    "oksh": "sh",
    "pdksh": "sh",
    "yash": "sh",
    "bash": "bash",
    "zsh": "zsh",
    "fish": "fish",
}

# zsh prints ZDOTDIR after reading /etc/zshenv and ~/.zshenv, where users usually set it.
ZDOTDIR_PROBE = 'printf %s "${ZDOTDIR-}"'


def shell_family(shell: str | None) -> ShellFamily | None:
    """The family of a shell given as a path (``/bin/zsh``) or process name (``-bash``)."""
    if not shell:
        return None
    name = os.path.basename(shell.strip()).lstrip("-")
    return _FAMILIES.get(name)


@dataclass(frozen=True)
class ShellInfo:
    """The user's shell as three witnesses see it: passwd, ``$SHELL`` and our parent process."""

    login: str | None
    env: str | None
    parent: str | None

    @property
    def family(self) -> ShellFamily | None:
        """The family new terminals start: the login shell's, else ``$SHELL``'s."""
        return shell_family(self.login) or shell_family(self.env)

    def uses(self, family: ShellFamily) -> bool:
        """Whether any witness says the user runs a shell of this family."""
        return family in (shell_family(s) for s in (self.login, self.env, self.parent))

    def to_json(self) -> dict[str, Any]:
        return {"login": self.login, "env": self.env, "parent": self.parent, "family": self.family}


@dataclass(frozen=True)
class RcFile:
    """One file to hold the marked PATH block; ``exists``/``symlink`` as found at detection."""

    path: Path
    family: ShellFamily
    exists: bool
    symlink: bool

    @property
    def env_script(self) -> Literal["posix", "fish"]:
        """Which env script this rc file sources: sh, bash and zsh share the POSIX one."""
        return "fish" if self.family == "fish" else "posix"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "family": self.family,
            "exists": self.exists,
            "symlink": self.symlink,
        }


def _read_parent_name(root: Path, ppid: int) -> str | None:
    try:
        return (root / "proc" / str(ppid) / "comm").read_text().strip() or None
    except OSError:
        return None


def detect_shell(
    *,
    login_shell: str | None,
    env: Mapping[str, str],
    system: str,
    root: Path,
    ppid: int | None = None,
) -> ShellInfo:
    """Gather the three witnesses; the parent's name is read only where /proc makes it cheap."""
    parent = None
    if system == "linux":
        parent = _read_parent_name(root, os.getppid() if ppid is None else ppid)
    return ShellInfo(login=login_shell or None, env=env.get("SHELL") or None, parent=parent)


def _rc(path: Path, family: ShellFamily) -> RcFile:
    return RcFile(path, family, os.path.lexists(path), path.is_symlink())


def resolve_zdotdir(
    home: Path, env: Mapping[str, str], runner: CommandRunner, *, zsh_relevant: bool
) -> Path:
    """``${ZDOTDIR:-$HOME}`` as the user's zsh sees it, not only as our environment has it."""
    value = env.get("ZDOTDIR")
    if value is None and zsh_relevant:
        zsh = shutil.which("zsh", path=env.get("PATH", os.defpath))
        if zsh is not None:
            zsh_env = dict(env)
            zsh_env["HOME"] = str(home)
            result = runner.run([zsh, "-c", ZDOTDIR_PROBE], timeout=3.0, env=zsh_env)
            if result.ok:
                # Only the last line: a chatty ~/.zshenv may print before our printf does.
                value = result.stdout.rsplit("\n", 1)[-1].strip()
    if value and os.path.isabs(value):
        return Path(value)
    return home


def plan_rc_files(
    home: Path, shell: ShellInfo, env: Mapping[str, str], runner: CommandRunner
) -> tuple[RcFile, ...]:
    """The rc files the PATH block belongs in, in the order they should be written.

    ``~/.profile`` always (created when missing). Bash reads only the first of
    ``.bash_profile``, ``.bash_login`` and ``.profile`` at login, so an existing one of the first
    two is added, but never created: creating ``.bash_profile`` would hide ``.profile``.
    ``.bashrc`` only where it exists. zsh and fish files where that shell is used or already
    configured.
    """
    files = [_rc(home / ".profile", "sh")]
    bash_profile = home / ".bash_profile"
    bash_login = home / ".bash_login"
    if os.path.lexists(bash_profile):
        files.append(_rc(bash_profile, "bash"))
    elif os.path.lexists(bash_login):
        files.append(_rc(bash_login, "bash"))
    if os.path.lexists(home / ".bashrc"):
        files.append(_rc(home / ".bashrc", "bash"))

    zshenv_exists = os.path.lexists(home / ".zshenv")
    zsh_used = shell.uses("zsh")
    zdotdir = resolve_zdotdir(home, env, runner, zsh_relevant=zsh_used or zshenv_exists)
    zshrc = zdotdir / ".zshrc"
    if zsh_used or os.path.lexists(zshrc):
        files.append(_rc(zshrc, "zsh"))

    config_home = env.get("XDG_CONFIG_HOME")
    config = Path(config_home) if config_home and os.path.isabs(config_home) else home / ".config"
    if shell.uses("fish") or os.path.isdir(config / "fish"):
        files.append(_rc(config / "fish" / "conf.d" / "mam.fish", "fish"))
    return tuple(files)
