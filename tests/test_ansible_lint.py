"""The collection is clean under ansible-lint and `ansible-test sanity`, both offline.

ansible-test installs each sanity test's requirements into venvs of its own, fetching pip's
bootstrap script from ci-files.testing.ansible.com and packages from an index. Neither is used
here: its pinned requirements are in checksums/ansible-sanity-requirements.txt, downloaded
hash-checked into a wheelhouse, and a private HOME's pip.conf (ansible-test passes HOME through
and nothing else of pip's) lets its pip install from that wheelhouse only; the bootstrap is a
three-line stand-in that installs the wheelhouse's pip. Tests that need no requirements run as
they are. Not run: pylint (same mechanism, another minute of venv building; the module is
also checked by ruff), changelog (no changelog fragments), pslint (PowerShell).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from ansible_env import COLLECTION, ROOT, VENV, ensure_ansible_venv

pytestmark = pytest.mark.slow

SANITY_LOCK = ROOT / "checksums" / "ansible-sanity-requirements.txt"
SANITY_TESTS = (
    "action-plugin-docs", "ansible-doc", "compile", "empty-init", "ignores", "import",
    "line-endings", "no-assert", "no-get-exception", "no-illegal-filenames", "no-smart-quotes",
    "pep8", "replace-urlopen", "runtime-metadata", "shebang", "shellcheck", "symlinks",
    "use-argspec-type-path", "use-compat-six", "validate-modules", "yamllint",
)
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", re.MULTILINE)


@pytest.fixture(scope="module")
def ansible_bin() -> Path:
    try:
        return ensure_ansible_venv()
    except RuntimeError as exc:
        pytest.fail(str(exc))


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_ansible_lint_passes_on_the_collection(ansible_bin: Path, tmp_path: Path) -> None:
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / "ansible"), "NO_COLOR": "1",
           "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "ansible")}
    done = subprocess.run([str(ansible_bin / "ansible-lint"), "--offline", "--nocolor"],
                          cwd=COLLECTION, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Passed: 0 failure(s), 0 warning(s)" in done.stdout + done.stderr


def sanity_home(ansible_bin: Path) -> Path:
    """A HOME whose pip installs only the hash-checked wheels; kept beside the venv."""
    home = VENV / "ansible-test-home"
    wheels = VENV / "sanity-wheels"
    lock = SANITY_LOCK.read_text()
    marker = wheels / ".lock"
    if not marker.is_file() or marker.read_text() != lock:
        wheels.mkdir(parents=True, exist_ok=True)
        for version in {"3.11", "3.13", _python_version(ansible_bin / "python")}:
            subprocess.run(
                [str(ansible_bin / "python"), "-m", "pip", "download", "-q", "--no-deps",
                 "--require-hashes", "--only-binary=:all:", "--python-version", version,
                 "-r", str(SANITY_LOCK), "-d", str(wheels)],
                check=True, capture_output=True)
        marker.write_text(lock)
    (home / ".config" / "pip").mkdir(parents=True, exist_ok=True)
    (home / ".config" / "pip" / "pip.conf").write_text(
        f"[global]\nno-index = true\nfind-links = {wheels}\n")
    cache = home / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    for pip_wheel in wheels.glob("pip-*.whl"):
        version = pip_wheel.name.split("-")[1]
        (cache / f"get_pip_{version.replace('.', '_')}.py").write_text(
            "import sys\n"
            f"sys.path.insert(0, {str(pip_wheel)!r})\n"
            "from pip._internal.cli.main import main\n"
            "args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]\n"
            "sys.exit(main(['install', '--upgrade', '--force-reinstall', *args]))\n")
    return home


def _python_version(python: Path) -> str:
    return subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_ansible_test_sanity_passes_offline_for_the_managed_hosts_python(
    ansible_bin: Path,
) -> None:
    data = next((VENV / "lib").glob("python3.*/site-packages/ansible_test/_data/requirements"))
    ours = {(normalized(n), v) for n, v in PIN.findall(SANITY_LOCK.read_text())}
    for name in ("ansible-doc", "import", "pep8", "runtime-metadata", "validate-modules",
                 "yamllint"):
        pins = PIN.findall((data / f"sanity.{name}.txt").read_text())
        theirs = {(normalized(n), v) for n, v in pins}
        assert theirs <= ours, f"update {SANITY_LOCK.name} to ansible-test's pins: {theirs - ours}"
    target = _python_version(Path("/usr/bin/python3"))  # what the managed hosts run modules with
    env = {**os.environ, "HOME": str(sanity_home(ansible_bin)), "NO_COLOR": "1"}
    env.pop("ANSIBLE_HOME", None)
    tests = [arg for name in SANITY_TESTS for arg in ("--test", name)]
    done = subprocess.run(
        [str(ansible_bin / "ansible-test"), "sanity", "--local", "--python", target, *tests],
        cwd=COLLECTION, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]
    assert "ERROR" not in done.stdout + done.stderr
