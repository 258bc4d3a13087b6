"""The release build: reproducible to the byte, SHA256SUMS accepted by sha256sum, fresh manifest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from workspaces import ROOT

pytestmark = pytest.mark.slow


def build(out: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts/build.py"), "--out", str(out)], check=True)


def test_two_builds_of_one_commit_are_byte_identical(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    build(first)
    build(second)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert {"mam-install.pyz", "SHA256SUMS"} <= set(names)
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_sha256sums_passes_sha256sum_strict_and_the_pyz_embeds_the_release(tmp_path):
    out = tmp_path / "dist"
    build(out)
    sums = (out / "SHA256SUMS").read_bytes()
    assert sums.endswith(b"\n") and b"\r" not in sums and b"\n\n" not in sums
    if shutil.which("sha256sum"):
        done = subprocess.run(
            ["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=out, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
    manifest = next(out.glob("manifest-*.json"))
    release = json.loads(manifest.read_text())
    assert len(release["source"]["commit"]) == 40
    with zipfile.ZipFile(out / "mam-install.pyz") as pyz:
        data = "site-packages/mam_install/_data/"
        assert pyz.read(data + "manifest.json") == manifest.read_bytes()
        archive = release["archive"]["name"]
        assert pyz.read(data + archive) == (out / archive).read_bytes()
        assert b"version_info < (3, 9)" in pyz.read("__main__.py")


def test_committed_manifest_matches_the_payload():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/manifest.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def build_interpreters() -> tuple[str, str]:
    """Python 3.9 (what the release workflow builds with) and this newer one, where both exist:
    a rebuilder uses whichever python3 they have. Otherwise this one twice."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for candidate in [*sorted(pyenv.glob("3.9.*/bin/python3.9")), shutil.which("python3.9")]:
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate), sys.executable
    return sys.executable, sys.executable


def test_two_clones_at_different_paths_build_the_same_release(tmp_path):
    """What a third party rebuilding a release does: their own clone of the commit, somewhere
    else, their own build directory and umask, maybe another python3. Only the commit counts."""
    clones = [
        (tmp_path / "a", tmp_path / "build-a", 0o022),
        (tmp_path / "somewhere" / "much-longer" / "rebuild", tmp_path / "other-build-dir", 0o002),
    ]
    for (clone, build_dir, umask), python in zip(clones, build_interpreters()):
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, umask=umask)
        env = {**os.environ, "MAM_BUILD_DIR": str(build_dir)}
        subprocess.run([python, "scripts/build.py"], cwd=clone, check=True, env=env, umask=umask)
    first, second = (clone / "dist" for clone, _, _ in clones)
    assert (first / "SHA256SUMS").read_bytes() == (second / "SHA256SUMS").read_bytes()
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
