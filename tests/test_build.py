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


def test_two_clones_at_different_paths_build_the_same_release(tmp_path):
    """What a user rebuilding a release checks: the bytes depend on the commit, not the place."""
    if subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True
    ).stdout.strip():
        pytest.skip("the working tree has uncommitted changes: clones would build another tree")
    outputs = []
    for name in ("one", "elsewhere/two"):
        clone = tmp_path / name
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {**os.environ, "MAM_BUILD_DIR": str(ROOT / "build")}
        subprocess.run([sys.executable, str(clone / "scripts/build.py")], check=True, env=env)
        outputs.append(clone / "dist")
    for path in sorted(outputs[0].iterdir()):
        assert path.read_bytes() == (outputs[1] / path.name).read_bytes(), path.name
