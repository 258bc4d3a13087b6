"""The built mam-install.pyz, run for real on every CPython 3.9-3.13 found on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from workspaces import ROOT, tree

pytestmark = pytest.mark.pyz


def _pythons(versions: range) -> list[tuple[str, Path]]:
    found: dict[str, Path] = {}
    roots = [Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"]
    for base in roots:
        for minor in versions:
            for candidate in sorted(base.glob(f"3.{minor}.*/bin/python3")) if minor >= 3 else []:
                found.setdefault(f"3.{minor}", candidate)
    for minor in versions:
        for path in (Path(f"/usr/bin/python3.{minor}"), Path(f"/usr/local/bin/python3.{minor}")):
            if path.exists():
                found.setdefault(f"3.{minor}", path)
    return sorted(found.items())


SUPPORTED = _pythons(range(9, 14))
TOO_OLD = _pythons(range(6, 9)) + [
    (p.parent.parent.name, p)
    for p in sorted(
        (Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions").glob(
            "2.7.*/bin/python"
        )
    )
]


@pytest.fixture(scope="session")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, str(ROOT / "scripts/build.py"), "--out", str(out)], check=True)
    return out / "mam-install.pyz"


@pytest.fixture(scope="session")
def shiv_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shiv")


def run_pyz(python: Path, pyz: Path, *args: str | Path, env: dict[str, str] | None = None,
            shiv_root: Path | None = None) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ if env is None else env)
    if shiv_root is not None:
        environment["SHIV_ROOT"] = str(shiv_root)
    return subprocess.run(
        [str(python), str(pyz), *map(str, args)],
        capture_output=True, text=True, env=environment, timeout=180,
    )


def test_at_least_two_supported_pythons_are_present():
    # The matrix below is only meaningful when it is a matrix.
    assert len(SUPPORTED) >= 2, f"found only {SUPPORTED}"


@pytest.mark.parametrize(("version", "python"), SUPPORTED, ids=[v for v, _ in SUPPORTED])
def test_version_and_workspace_round_trip(version, python, pyz, shiv_root, tmp_path):
    shown = run_pyz(python, pyz, "--version", shiv_root=shiv_root)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("mam-install ") and f"Python {version}." in shown.stdout
    assert "payload " in shown.stdout
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "AGENT.md").write_bytes(b"mine\n")
    installed = run_pyz(python, pyz, "install", "-y", "--no-host", "--workspace", ws,
                        shiv_root=shiv_root)
    assert installed.returncode == 0, installed.stderr
    assert (ws / "AGENT.md").read_bytes() == b"mine\n"
    assert (ws / "AGENT.md.mam-new").is_file()
    assert (ws / ".agents/skills/lib.sh").is_file()
    again = run_pyz(python, pyz, "install", "-y", "--no-host", "--workspace", ws,
                    shiv_root=shiv_root)
    assert again.returncode == 0 and "nothing to do" in again.stderr
    status = run_pyz(python, pyz, "status", "--workspace", ws, shiv_root=shiv_root)
    assert status.returncode == 0, status.stderr
    removed = run_pyz(python, pyz, "uninstall", "--workspace", ws, shiv_root=shiv_root)
    assert removed.returncode == 0, removed.stderr
    assert tree(ws) == {"AGENT.md": b"mine\n"}


@pytest.mark.parametrize(("version", "python"), TOO_OLD, ids=[v for v, _ in TOO_OLD])
def test_older_pythons_get_one_line_and_exit_3(version, python, pyz):
    done = run_pyz(python, pyz, "--version")
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "needs Python 3.9 or newer" in done.stderr


@pytest.fixture
def read_only_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    if os.geteuid() != 0:
        home.chmod(0o555)
        yield home
        home.chmod(0o755)
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(home)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.strip()}")
    try:
        yield home
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)


def test_works_with_a_read_only_home(pyz, read_only_home, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIV_", "XDG_"))}
    env["HOME"] = str(read_only_home)
    ws = tmp_path / "ws"
    done = run_pyz(Path(sys.executable), pyz, "install", "-y", "--no-host", "--workspace", ws,
                   env=env)
    assert done.returncode == 0, done.stderr
    assert (ws / "AGENT.md").is_file()
    assert list(read_only_home.iterdir()) == []


def test_works_with_home_unset(pyz, tmp_path, shiv_root):
    env = {k: v for k, v in os.environ.items() if k != "HOME"}
    done = run_pyz(Path(sys.executable), pyz, "--version", env=env, shiv_root=shiv_root)
    assert done.returncode == 0, done.stderr


def test_unwritable_shiv_root_is_one_clear_line(pyz, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    env = dict(os.environ, SHIV_ROOT=str(blocker / "sub"))
    done = run_pyz(Path(sys.executable), pyz, "--version", env=env)
    assert done.returncode == 3
    assert "SHIV_ROOT" in done.stderr and "Traceback" not in done.stderr


def test_cache_clean_removes_only_stale_extractions(pyz, tmp_path):
    root = tmp_path / "shiv"
    root.mkdir()
    stale = root / "mam-install.pyz_0123456789abcdef"
    (stale / "site-packages").mkdir(parents=True)
    unrelated = root / "other-tool.pyz_abc"
    unrelated.mkdir()
    env = dict(os.environ, SHIV_ROOT=str(root))
    assert run_pyz(Path(sys.executable), pyz, "--version", env=env).returncode == 0
    current = [p for p in root.iterdir() if p.name.startswith("mam-install") and p != stale]
    done = run_pyz(Path(sys.executable), pyz, "cache", "clean", env=env)
    assert done.returncode == 0, done.stderr
    assert not stale.exists()
    assert unrelated.exists()
    assert all(p.exists() for p in current if p.is_dir())
