"""scripts/sign.py signs exactly what SHA256SUMS lists, plus SHA256SUMS, with sigstore."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from mam_install._errors import IntegrityError
from mam_install._sums import format_sums
from workspaces import ROOT

from scripts.sign import artifacts, sign_command


def test_every_listed_artifact_and_the_sums_file_are_signed(tmp_path):
    for name in ("mam-install.pyz", "manifest-1.0.0.json"):
        (tmp_path / name).write_bytes(name.encode())
    sums = {
        n: hashlib.sha256(n.encode()).hexdigest()
        for n in ("mam-install.pyz", "manifest-1.0.0.json")
    }
    (tmp_path / "SHA256SUMS").write_bytes(format_sums(sums))
    (tmp_path / "stray.txt").write_text("not part of the release\n")
    files = artifacts(tmp_path)
    assert [f.name for f in files] == ["mam-install.pyz", "manifest-1.0.0.json", "SHA256SUMS"]
    command = sign_command("python3", files)
    assert command[:5] == ["python3", "-m", "sigstore", "sign", "--overwrite"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/sign.py"), str(tmp_path), "--dry-run"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "sigstore sign" in done.stderr


def test_a_malformed_sums_file_is_never_signed(tmp_path):
    (tmp_path / "SHA256SUMS").write_bytes(b"not a sums line\n")
    with pytest.raises(IntegrityError):
        artifacts(tmp_path)
