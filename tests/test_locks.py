"""Every lock in checksums/ installs as the scripts install it (scripts/locked_install.py: no
resolver, hashes required, wheels only, then `pip check`) into fresh venvs made with the pip
bundled with the oldest and the newest CPython on this machine: what a new contributor, a
rebuilder or the release job starts from, whatever has been published since the lock was made."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import pytest
from workspaces import ROOT

from scripts.lock import LOCKS

pytestmark = pytest.mark.slow

CHECKSUMS = ROOT / "checksums"
INSTALL = [sys.executable, str(ROOT / "scripts" / "locked_install.py")]
# Read now, before the suite's conftest points HOME at a temporary directory: a user's pip
# reuses its cache, so these installs may too.
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or platformdirs.user_cache_dir("pip")


def pyenv_root() -> Path:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv:
        done = subprocess.run([pyenv, "root"], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip():
            return Path(done.stdout.strip())
    return Path.home() / ".pyenv"


def cpythons() -> dict[tuple[int, int], str]:
    """One working interpreter per supported minor version: pyenv's binaries (its shims fail
    unless that version is selected), then python3.X on PATH, then this one."""
    found: dict[tuple[int, int], str] = {}
    versions = pyenv_root() / "versions"
    for minor in range(9, 14):
        candidates = [*sorted(versions.glob(f"3.{minor}.*/bin/python3.{minor}"), reverse=True)]
        candidates.append(shutil.which(f"python3.{minor}"))
        for candidate in candidates:
            if candidate and version_of(str(candidate)) == (3, minor):
                found[(3, minor)] = str(candidate)
                break
    found.setdefault(sys.version_info[:2], getattr(sys, "_base_executable", sys.executable))
    return found


def version_of(python: str) -> tuple[int, int] | None:
    code = "import sys; print(*sys.version_info[:2])"
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = done.stdout.split()
    return (int(words[0]), int(words[1])) if done.returncode == 0 and len(words) == 2 else None


FOUND = cpythons()
OLDEST_AND_NEWEST = sorted({FOUND[min(FOUND)], FOUND[max(FOUND)]})


def jobs(python: str, base: Path) -> dict[str, list[list[str]]]:
    """The commands that install each lock the way its script does, one chain per venv."""
    lock = {name: str(CHECKSUMS / f"{name}-requirements.txt") for name in LOCKS}
    build = [*INSTALL, "--python", python, str(base / "build-venv")]
    return {
        # scripts/build.py: the build venv, then the pyz's site with that venv's pip.
        "build+pyz": [
            [*build, lock["build"]],
            [*build, lock["pyz"], "--target", str(base / "pyz-site")],
        ],
        # scripts/test.py's .venv, and the release workflow's signing venv.
        "test": [[*INSTALL, "--python", python, str(base / "test-venv"), lock["test"]]],
        "sign": [[*INSTALL, "--python", python, str(base / "sign-venv"), lock["sign"]]],
    }


@dataclass
class Installed:
    base: Path
    output: str  # what the commands said, where one failed; "" when all succeeded


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Installed]:
    """Every (python, chain) run at once: the time is the network's more than the CPU's."""
    env = {**os.environ, "PIP_CACHE_DIR": PIP_CACHE}
    running = []
    for python in OLDEST_AND_NEWEST:
        base = tmp_path_factory.mktemp("locks")
        for name, chain in jobs(python, base).items():
            script = " && ".join(shlex.join(argv) for argv in chain)
            process = subprocess.Popen(
                ["sh", "-c", script],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            running.append(((python, name), base, process))
    results = {}
    for key, base, process in running:
        output, _ = process.communicate(timeout=1200)
        results[key] = Installed(base, "" if process.returncode == 0 else output)
    return results


def pip_version(python: Path | str, code: str) -> str:
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


# Locks proven by the tests that use them, on the one Python they serve, not here.
ELSEWHERE = {
    "ansible": "tests/ansible_env.py",  # the controller venv, newest Python >= 3.11
    "ansible-sanity": "tests/test_ansible_lint.py",  # downloaded hash-checked, not installed
}


def test_every_lock_in_checksums_is_made_by_lock_py_and_installed_by_a_test() -> None:
    on_disk = {p.name for p in CHECKSUMS.glob("*-requirements.txt")}
    assert on_disk == {f"{name}-requirements.txt" for name in LOCKS}
    for name in LOCKS:
        assert (CHECKSUMS / f"{name}-requirements.in").is_file(), name
    commands = str(jobs("python3", Path("x")))
    for name in LOCKS:
        lock = f"{name}-requirements.txt"
        assert lock in commands or lock in (ROOT / ELSEWHERE[name]).read_text(), name


def test_every_pin_is_exact_and_hashed() -> None:
    """What --no-deps relies on: each requirement is `name==version`, with its hashes."""
    for name in LOCKS:
        text = (CHECKSUMS / f"{name}-requirements.txt").read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
        assert entries, name
        for entry in entries:
            head = entry.splitlines()[0]
            assert re.match(r"^[A-Za-z0-9._-]+==[^ ;\\]+( ;[^\\]+)? \\$", head), (name, head)
            assert "--hash=sha256:" in entry, (name, head)


@pytest.mark.parametrize("python", OLDEST_AND_NEWEST)
@pytest.mark.parametrize("chain", ["build+pyz", "test", "sign"])
def test_the_lock_installs_with_the_bundled_pip_and_passes_pip_check(
    installed: dict[tuple[str, str], Installed], python: str, chain: str
) -> None:
    result = installed[(python, chain)]
    assert result.output == "", result.output[-4000:]
    if chain != "build+pyz":  # the build lock pins its own pip; the others keep the bundled one
        venv_python = result.base / f"{chain}-venv" / "bin" / "python"
        bundled = pip_version(python, "import ensurepip; print(ensurepip.version())")
        assert pip_version(venv_python, "import pip; print(pip.__version__)") == bundled
    else:
        assert (result.base / "pyz-site" / "httpx").is_dir()
        assert not (result.base / "pyz-site" / "pip").exists()
