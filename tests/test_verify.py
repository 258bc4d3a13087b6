"""`verify` on a real built release, and on crafted releases whose sums and manifest agree but
whose archive is hostile: each tampering fails with exit 5 and writes nothing outside staging."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from clirun import cli
from mam_install.release._sums import format_sums
from workspaces import ROOT, pinned, tree

GOOD = {"workspace/AGENT.md": b"# agents\n", "workspace/.agents/skills/lib.sh": b"#!/bin/sh\n"}
SIGSTORE = ROOT / "tests" / "data" / "sigstore"  # provenance in its README.md
IDENTITY = (
    "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
)
ISSUER = "https://token.actions.githubusercontent.com"


BASE_URL = "https://github.com/mam-org/mam-install/releases/download/v{version}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, str(ROOT / "scripts/build.py"), "--out", str(out), "--base-url", BASE_URL],
        check=True,
    )
    return out


def tree_is_dirty() -> bool:
    """What scripts/build.py marks as ``+dirty`` in the manifest's ref."""
    return bool(
        subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "payload", "installer",
             "scripts", "checksums"],
            capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip


def resum(release: Path) -> None:
    names = [p.name for p in release.iterdir() if p.name != "SHA256SUMS"]
    sums = {n: hashlib.sha256((release / n).read_bytes()).hexdigest() for n in names}
    (release / "SHA256SUMS").write_bytes(format_sums(sums))


def finding(run, check: str, subject: str) -> dict:  # type: ignore[no-untyped-def]
    return next(
        f for f in run.json()["findings"] if f["check"] == check and f["subject"] == subject
    )


def copy_release(built: Path, tmp_path: Path) -> Path:
    release = tmp_path / "release"
    shutil.copytree(built, release)
    return release


def test_a_genuine_release_verifies(built):
    # A build from a tree with uncommitted changes is marked +dirty, and rightly refused.
    run = cli("--json", "verify", built, *(["--allow-dirty"] if tree_is_dirty() else []))
    assert run.exit_code == 0, run.stderr
    checks = run.json()["checks"]
    assert set(checks) == {"sums", "artifact", "manifest", "source", "archive", "pyz", "bootstrap"}
    assert all(checks.values()) and run.json()["verified"] is True
    assert all(f["ok"] for f in run.json()["findings"])


def test_a_release_built_from_a_dirty_tree_fails_unless_allowed(built, tmp_path):
    release = copy_release(built, tmp_path)
    manifest = next(release.glob("manifest-*.json"))
    doc = json.loads(manifest.read_text())
    doc["source"]["ref"] = "main+dirty"
    manifest.write_text(json.dumps(doc, indent=2) + "\n")
    resum(release)
    run = cli("--json", "verify", release)
    assert run.exit_code == 5
    source = finding(run, "source", manifest.name)
    assert not source["ok"] and "dirty tree" in source["detail"]
    assert "error: source" in run.stderr
    allowed = cli("--json", "verify", release, "--allow-dirty")
    assert finding(allowed, "source", manifest.name)["ok"]


def test_a_bootstrap_that_downloads_from_a_placeholder_fails(built, tmp_path):
    release = copy_release(built, tmp_path)
    bootstrap = release / "get-mam.py"
    text = bootstrap.read_text()
    real = next(line for line in text.splitlines() if line.startswith("DEFAULT_BASE_URL = "))
    for placeholder in ("https://releases.mam.invalid/0.1.0", "https://<releases>/0.1.0"):
        bootstrap.write_text(text.replace(real, f'DEFAULT_BASE_URL = "{placeholder}"'))
        resum(release)
        run = cli("--json", "verify", release, "--allow-dirty")
        assert run.exit_code == 5, placeholder
        url = finding(run, "bootstrap", "get-mam.py:DEFAULT_BASE_URL")
        assert not url["ok"] and "placeholder" in url["detail"]


def test_identity_and_issuer_require_a_signature_on_every_artifact(built):
    run = cli(
        "--json", "verify", built, "--allow-dirty", "--identity", IDENTITY, "--issuer", ISSUER
    )
    assert run.exit_code == 5
    total = len((built / "SHA256SUMS").read_text().splitlines()) + 1  # and SHA256SUMS itself
    summary = finding(run, "signature", built.name)
    assert not summary["ok"] and summary["detail"].startswith(f"0 of {total} artifacts signed")
    assert "warning: FAIL" not in run.stderr and "error: signature" in run.stderr


def test_one_flipped_byte_in_any_artifact_fails(built, tmp_path):
    for name in ("mam-install.pyz", "get-mam.py"):
        release = copy_release(built, tmp_path / name)
        data = bytearray((release / name).read_bytes())
        data[len(data) // 3] ^= 0x20
        (release / name).write_bytes(bytes(data))
        run = cli("verify", release)
        assert run.exit_code == 5
        assert f"error: artifact   {name}" in run.stderr


def test_malformed_sums_line_fails_instead_of_being_skipped(built, tmp_path):
    release = copy_release(built, tmp_path)
    sums = (release / "SHA256SUMS").read_bytes().replace(b"  ", b" *", 1)
    (release / "SHA256SUMS").write_bytes(sums)
    run = cli("verify", release)
    assert run.exit_code == 5 and "line 1" in run.stderr


def test_an_extra_unlisted_artifact_fails(built, tmp_path):
    release = copy_release(built, tmp_path)
    (release / "evil.sh").write_text("curl x | sh\n")
    assert cli("verify", release).exit_code == 5


def crafted_release(
    tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]], listed: dict[str, bytes]
) -> Path:
    """A release whose manifest and SHA256SUMS are self-consistent, around a chosen archive."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    archive = raw.getvalue()
    files = [
        {
            "path": m.split("/", 1)[1],
            "sha256": hashlib.sha256(d).hexdigest(),
            "size": len(d),
            "mode": "0644",
            "scope": "workspace",
        }
        for m, d in sorted(listed.items())
    ]
    manifest = {
        "schema": 1,
        "name": "mam",
        "version": "9.0.0",
        "archive": {
            "name": "mam-payload-9.0.0.tar.gz",
            "sha256": hashlib.sha256(archive).hexdigest(),
            "size": len(archive),
        },
        "files": files,
    }
    release = tmp_path / "crafted"
    release.mkdir()
    (release / "mam-payload-9.0.0.tar.gz").write_bytes(archive)
    (release / "manifest-9.0.0.json").write_text(json.dumps(manifest))
    names = ["mam-payload-9.0.0.tar.gz", "manifest-9.0.0.json"]
    sums = {n: hashlib.sha256((release / n).read_bytes()).hexdigest() for n in names}
    (release / "SHA256SUMS").write_bytes(format_sums(sums))
    return release


def regular(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def special(name: str, kind: bytes, target: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


HOSTILE = {
    "dotdot": [regular("../x", b"escaped\n")],
    "absolute": [regular("/etc/x", b"escaped\n")],
    "symlink": [special("workspace/AGENT.md", tarfile.SYMTYPE, "/etc/passwd")],
    "hardlink": [special("workspace/AGENT.md", tarfile.LNKTYPE, "../../etc/passwd")],
    "device": [special("workspace/dev", tarfile.CHRTYPE)],
    "fifo": [special("workspace/fifo", tarfile.FIFOTYPE)],
    "setuid": [regular("workspace/AGENT.md", GOOD["workspace/AGENT.md"], 0o4755)],
    "unlisted": [regular("workspace/.agents/skills/extra.sh", b"#!/bin/sh\nrm -rf ~\n")],
    "larger": [regular("workspace/AGENT.md", GOOD["workspace/AGENT.md"] + b"more\n")],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_fails_verify_and_install_writes_nothing(case, tmp_path):
    members = [
        regular(n, d) for n, d in GOOD.items() if not any(m[0].name == n for m in HOSTILE[case])
    ]
    release = crafted_release(tmp_path, members + HOSTILE[case], GOOD)
    run = cli("verify", release)
    assert run.exit_code == 5, run.stderr
    sentinel = tmp_path / "ws"
    sentinel.mkdir()
    (sentinel / "AGENT.md").write_bytes(b"mine\n")
    installed = cli("install", "-y", "--no-host", "--workspace", sentinel, *pinned(release))
    assert installed.exit_code == 5, installed.stderr
    assert tree(sentinel) == {"AGENT.md": b"mine\n"}
    assert not (tmp_path / "x").exists()


@pytest.fixture
def signed_release(tmp_path: Path) -> Path:
    release = tmp_path / "signed"
    release.mkdir()
    wheel = "rfc8785-0.1.2-py3-none-any.whl"
    shutil.copy(SIGSTORE / wheel, release / wheel)
    shutil.copy(SIGSTORE / f"{wheel}.sigstore.json", release / f"{wheel}.sigstore.json")
    digest = hashlib.sha256((release / wheel).read_bytes()).hexdigest()
    (release / "SHA256SUMS").write_bytes(format_sums({wheel: digest}))
    return release


def verify_signed(release: Path, identity: str = IDENTITY):  # type: ignore[no-untyped-def]
    return cli(
        "--json",
        "verify",
        release,
        "--identity",
        identity,
        "--issuer",
        ISSUER,
        "--trusted-root",
        SIGSTORE / "trusted_root.json",
    )


def test_a_real_sigstore_bundle_verifies_offline_with_a_pinned_root(signed_release):
    run = verify_signed(signed_release)
    wheel = finding(run, "signature", "rfc8785-0.1.2-py3-none-any.whl")
    assert wheel["ok"], run.stderr
    # The public vector signs the wheel only; the SHA256SUMS written here has no bundle, and
    # with --identity/--issuer that gap fails the release.
    assert not finding(run, "signature", "SHA256SUMS")["ok"]
    summary = finding(run, "signature", signed_release.name)
    assert not summary["ok"] and summary["detail"].startswith("1 of 2 artifacts signed")
    assert run.exit_code == 5


def test_a_flipped_byte_or_a_wrong_identity_fails_the_signature(signed_release):
    wrong = verify_signed(signed_release, identity=IDENTITY.replace("v0.1.2", "v6.6.6"))
    assert wrong.exit_code == 5
    assert not any(f["ok"] for f in wrong.json()["findings"] if f["check"] == "signature")
    wheel = signed_release / "rfc8785-0.1.2-py3-none-any.whl"
    data = bytearray(wheel.read_bytes())
    data[100] ^= 1
    wheel.write_bytes(bytes(data))
    digest = hashlib.sha256(bytes(data)).hexdigest()
    (signed_release / "SHA256SUMS").write_bytes(format_sums({wheel.name: digest}))
    flipped = verify_signed(signed_release)
    assert flipped.exit_code == 5
    signatures = [f for f in flipped.json()["findings"] if f["check"] == "signature"]
    assert signatures and not any(f["ok"] for f in signatures)


def test_require_signature_fails_when_a_bundle_is_missing(built):
    run = cli("verify", built, "--require-signature", "--identity", IDENTITY, "--issuer", ISSUER)
    assert run.exit_code == 5
    assert "sigstore.json" in run.stderr


def test_a_pyz_whose_embedded_payload_differs_fails_even_with_matching_sums(built, tmp_path):
    import zipfile

    release = copy_release(built, tmp_path)
    pyz = release / "mam-install.pyz"
    data = pyz.read_bytes()
    shebang = data[: data.index(b"\n") + 1]
    rebuilt = io.BytesIO()
    rebuilt.write(shebang)
    with zipfile.ZipFile(io.BytesIO(data)) as old, zipfile.ZipFile(rebuilt, "w") as new:
        for info in old.infolist():
            content = old.read(info)
            if info.filename.endswith(".tar.gz") and "_data/" in info.filename:
                content = content[:-1] + bytes([content[-1] ^ 1])
            new.writestr(info, content)
    pyz.write_bytes(rebuilt.getvalue())
    names = [p.name for p in release.iterdir() if p.name != "SHA256SUMS"]
    sums = {n: hashlib.sha256((release / n).read_bytes()).hexdigest() for n in names}
    (release / "SHA256SUMS").write_bytes(format_sums(sums))
    run = cli("--json", "verify", release)
    assert run.exit_code == 5
    failed = [f["subject"] for f in run.json()["findings"] if not f["ok"]]
    assert any(s.startswith("mam-install.pyz:mam-payload-") for s in failed), failed


def test_a_published_ed25519_signature_must_be_the_release_keys(built, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from mam_install.release._signature import encode_signature

    release = copy_release(built, tmp_path)
    forged = Ed25519PrivateKey.generate().sign((release / "SHA256SUMS").read_bytes())
    (release / "SHA256SUMS.ed25519").write_bytes(encode_signature(forged))
    run = cli("--json", "verify", release, "--allow-dirty")
    assert run.exit_code == 5
    assert not finding(run, "ed25519", "SHA256SUMS.ed25519")["ok"]
    assert not any(f["subject"] == "SHA256SUMS.ed25519" for f in run.json()["findings"]
                   if f["check"] == "artifact")  # fmt: skip
