"""The release build: reproducible to the byte, SHA256SUMS accepted by sha256sum, fresh manifest."""

from __future__ import annotations

import json
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
        done = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=out,
                              capture_output=True, text=True)
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
    done = subprocess.run([sys.executable, str(ROOT / "scripts/manifest.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
