"""The Ansible controller of the tests: a venv made from checksums/ansible-requirements.txt.

ansible-core 2.18 and newer need Python >= 3.11 on the controller and ansible-lint brings pins of
its own, so the controller gets its own venv and lock instead of a block in the main test lock
(which must install on 3.9). It is made with the newest CPython >= 3.11 on the machine, the same
way scripts/test.py makes .venv: pip --no-deps --require-hashes --only-binary, then pip check.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from scripts.locked_install import create_venv, install_lock

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "checksums" / "ansible-requirements.txt"
VENV = ROOT / ".venv-ansible"
COLLECTION = ROOT / "ansible" / "ansible_collections" / "mam" / "install"
MIN_CONTROLLER = (3, 11)


def _version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return (int(out[0]), int(out[1])) if len(out) == 2 else None


def newest_python() -> str | None:
    """The newest CPython >= 3.11 found (pyenv's, then PATH's), or None."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if not pyenv.is_dir():
        pyenv = Path("/root/.pyenv/versions")
    candidates = [str(p) for p in sorted(pyenv.glob("3.*/bin/python3"))]
    candidates += [p for p in (shutil.which(f"python3.{m}") for m in range(11, 15)) if p]
    candidates += [sys.executable, "/usr/bin/python3"]
    found = [(v, c) for c in candidates if Path(c).exists() and (v := _version(c))]
    found = [(v, c) for v, c in found if v >= MIN_CONTROLLER]
    return max(found)[1] if found else None


def ensure_ansible_venv() -> Path:
    """The venv's bin directory, (re)made when the lock changed. Raises RuntimeError."""
    marker = VENV / ".requirements-sha256"
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    bin_dir = VENV / "bin"
    fresh = marker.is_file() and marker.read_text() == digest
    if fresh and (bin_dir / "ansible-playbook").exists():
        return bin_dir
    base = newest_python()
    if base is None:
        raise RuntimeError("no CPython >= 3.11 on this machine for the Ansible controller")
    shutil.rmtree(VENV, ignore_errors=True)
    try:  # the one way every lock is installed
        install_lock(create_venv(VENV, base), LOCK)
    except subprocess.CalledProcessError as error:
        command = " ".join(map(str, error.cmd))
        raise RuntimeError(f"{command} failed (its output is above)") from None
    marker.write_text(digest)
    return bin_dir
