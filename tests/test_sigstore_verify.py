"""Offline sigstore verification against a real public bundle and pinned trusted root."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mam_install._errors import ExitCode, IntegrityError
from mam_install.release._sigstore_verify import sigstore_available, verify_bundle

# A real public test vector; its provenance is in tests/data/sigstore/README.md.
VECTORS = Path(__file__).resolve().parent / "data" / "sigstore"
WHEEL = VECTORS / "rfc8785-0.1.2-py3-none-any.whl"
BUNDLE = VECTORS / "rfc8785-0.1.2-py3-none-any.whl.sigstore.json"
TRUSTED_ROOT = VECTORS / "trusted_root.json"
IDENTITY = (
    "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
)
ISSUER = "https://token.actions.githubusercontent.com"


def test_sigstore_is_installed_with_the_test_requirements() -> None:
    # sigstore is in checksums/test-requirements.txt: its absence is a broken set-up, not a skip.
    assert sigstore_available()


def _refused(artifact: Path, bundle: Path, **overrides: object) -> str:
    kwargs: dict[str, object] = {
        "identity": IDENTITY,
        "issuer": ISSUER,
        "trusted_root": TRUSTED_ROOT,
    }
    kwargs.update(overrides)
    with pytest.raises(IntegrityError) as caught:
        verify_bundle(artifact, bundle, **kwargs)  # type: ignore[arg-type]
    assert caught.value.exit_code == ExitCode.INTEGRITY
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_genuine_wheel_verifies_with_the_pinned_root() -> None:
    verify_bundle(WHEEL, BUNDLE, identity=IDENTITY, issuer=ISSUER, trusted_root=TRUSTED_ROOT)


def test_genuine_wheel_verifies_with_sigstores_production_trust_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No --trusted-root: sigstore's public Verifier.production(). Here the TUF repository is
    # unreachable, so it falls back to the TUF cache, which sigstore seeds into XDG dirs.
    home = tmp_path / "empty-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    verify_bundle(WHEEL, BUNDLE, identity=IDENTITY, issuer=ISSUER, trusted_root=None)
    assert {p.name for p in home.iterdir()} <= {"cache", "data"}


def test_one_flipped_byte_fails(tmp_path: Path) -> None:
    data = bytearray(WHEEL.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered = tmp_path / WHEEL.name
    tampered.write_bytes(bytes(data))
    message = _refused(tampered, BUNDLE)
    assert str(BUNDLE) in message
    assert "do not use this artifact" in message


def test_wrong_identity_fails() -> None:
    wrong = IDENTITY.replace("v0.1.2", "v9.9.9")
    message = _refused(WHEEL, BUNDLE, identity=wrong)
    assert repr(wrong) in message


def test_wrong_issuer_fails() -> None:
    _refused(WHEEL, BUNDLE, issuer="https://accounts.google.com")


def test_malformed_bundle_fails(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sigstore.json"
    broken.write_text("{not json")
    _refused(WHEEL, broken)
    document = json.loads(BUNDLE.read_text())
    document["messageSignature"]["signature"] = "AAAA"
    forged = tmp_path / "forged.sigstore.json"
    forged.write_text(json.dumps(document))
    _refused(WHEEL, forged)


def test_bundle_of_another_artifact_fails(tmp_path: Path) -> None:
    other = tmp_path / "other.whl"
    other.write_bytes(b"not the wheel")
    _refused(other, BUNDLE)


def test_missing_artifact_or_bundle_fails_with_the_path(tmp_path: Path) -> None:
    message = _refused(tmp_path / "absent.whl", BUNDLE)
    assert "absent.whl" in message
    message = _refused(WHEEL, tmp_path / "absent.sigstore.json")
    assert "absent.sigstore.json" in message


def test_unusable_trusted_root_fails(tmp_path: Path) -> None:
    bad_root = tmp_path / "trusted_root.json"
    bad_root.write_text('{"mediaType": "something/else"}')
    message = _refused(WHEEL, BUNDLE, trusted_root=bad_root)
    assert "could not be loaded" in message


def test_a_different_trusted_root_fails(tmp_path: Path) -> None:
    # The same root with its Fulcio CAs removed can anchor nothing the bundle chains to.
    document = json.loads(TRUSTED_ROOT.read_text())
    document["certificateAuthorities"] = document["certificateAuthorities"][:0]
    stripped = tmp_path / "trusted_root.json"
    stripped.write_text(json.dumps(document))
    _refused(WHEEL, BUNDLE, trusted_root=stripped)


def test_availability_check_does_not_import_sigstore() -> None:
    code = (
        "import sys, mam_install.release._sigstore_verify as m; "
        "print(m.sigstore_available(), 'sigstore' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(Path(__file__).parents[1] / "installer")},
    )
    assert done.stdout.split() == ["True", "False"]
