"""scripts/sign.py signs exactly what SHA256SUMS lists, plus SHA256SUMS, with sigstore."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from mam_install._errors import IntegrityError
from mam_install.release._sums import format_sums
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


def _release(tmp_path):  # type: ignore[no-untyped-def]
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "mam-install.pyz").write_bytes(b"pyz")
    sums = {"mam-install.pyz": hashlib.sha256(b"pyz").hexdigest()}
    (tmp_path / "SHA256SUMS").write_bytes(format_sums(sums))
    return tmp_path


def test_ed25519_signs_sums_with_a_keygen_key_and_the_installer_verifies_it(tmp_path):
    import base64

    from mam_install.release._signature import verify_sums_signature

    key = tmp_path / "key" / "release-key"
    key.parent.mkdir()
    script = str(ROOT / "scripts/sign.py")
    subprocess.run([sys.executable, script, "keygen", str(key)], check=True)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    release = _release(tmp_path / "dist")
    unsigned = subprocess.run(
        [sys.executable, script, "ed25519", str(release)],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert unsigned.returncode != 0 and "MAM_RELEASE_SIGNING_KEY" in unsigned.stderr
    done = subprocess.run(
        [sys.executable, script, "ed25519", str(release)],
        capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "MAM_RELEASE_SIGNING_KEY": key.read_text()},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    public = base64.b64decode(Path(f"{key}.pub").read_text().strip())
    sums, signature = (release / "SHA256SUMS").read_bytes(), release / "SHA256SUMS.ed25519"
    assert verify_sums_signature(sums, signature.read_bytes(), [public], "t")


def test_a_malformed_sums_file_is_never_signed_with_ed25519(tmp_path):
    release = _release(tmp_path)
    (release / "SHA256SUMS").write_bytes(b"not a sums line\n")
    import base64

    key = base64.b64encode(b"\1" * 32).decode()
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/sign.py"), "ed25519", str(release)],
        capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "MAM_RELEASE_SIGNING_KEY": key},
    )  # fmt: skip
    assert done.returncode != 0 and not (release / "SHA256SUMS.ed25519").exists()
