"""`mam-install self update` from 0.1.0 to a 0.2.0 release built by the project's own scripts
(a clone of this commit with another installer version, scripts/build.py, scripts/sign.py),
served over HTTP; refused when unsigned, tampered or older. Then `self uninstall`.

Both pyz are built with MAM_RELEASE_PUBKEY naming a test key made here (scripts/sign.py keygen);
the installed copy lives where the PATH block points: $XDG_DATA_HOME/mam/bin/mam-install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mam_install.release._sums import format_sums
from workspaces import ROOT, sha

from tests.release_server import ReleaseServer, running_server

pytestmark = pytest.mark.pyz
PYTHON = sys.executable


def _build(source: Path, out: Path, key: Path) -> Path:
    env = {
        **os.environ,
        "MAM_RELEASE_PUBKEY": f"{key}.pub",
        "MAM_BUILD_DIR": str(ROOT / "build"),  # the build venv and wheels, shared
    }
    subprocess.run(
        [sys.executable, str(source / "scripts/build.py"), "--out", str(out)], check=True, env=env
    )
    return out


def _sign(release: Path, key: Path) -> Path:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts/sign.py"), "ed25519", str(release), "--key-file",
         str(key)],
        check=True,
    )  # fmt: skip
    return release


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "release-key"
    subprocess.run([sys.executable, str(ROOT / "scripts/sign.py"), "keygen", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def v010(tmp_path_factory: pytest.TempPathFactory, key: Path) -> Path:
    """This tree's release (installer 0.1.0), signed."""
    return _sign(_build(ROOT, tmp_path_factory.mktemp("v010"), key), key)


@pytest.fixture(scope="module")
def v020(tmp_path_factory: pytest.TempPathFactory, key: Path) -> Path:
    """A clone of this commit whose installer says 0.2.0, built and signed the same way."""
    clone = tmp_path_factory.mktemp("clone") / "mam-install"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    init = clone / "installer/mam_install/__init__.py"
    init.write_text(init.read_text().replace('__version__ = "0.1.0"', '__version__ = "0.2.0"'))
    assert '"0.2.0"' in init.read_text()
    return _sign(_build(clone, tmp_path_factory.mktemp("v020"), key), key)


@pytest.fixture
def serve() -> Iterator[ReleaseServer]:
    with running_server() as server:
        yield server


def publish(server: ReleaseServer, release: Path, prefix: str) -> str:
    for path in release.iterdir():
        server.routes[prefix + path.name] = ReleaseServer.ok(path.read_bytes())
    return server.url(prefix.rstrip("/"))


def installed() -> Path:
    return Path(os.environ["XDG_DATA_HOME"]) / "mam" / "bin" / "mam-install"


def run(pyz: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, str(pyz), *args], capture_output=True, text=True, timeout=180, check=False
    )


def copy_without(release: Path, dest: Path, *names: str) -> Path:
    dest.mkdir()
    for path in release.iterdir():
        if path.name not in names:
            shutil.copy(path, dest / path.name)
    return dest


def test_self_update_installs_the_signed_newer_release_then_says_it_is_current(v010, v020, serve):
    url = publish(serve, v020, "/v020/")
    done = run(v010 / "mam-install.pyz", "self", "update", "--from", url)
    assert done.returncode == 0, done.stderr
    assert installed().read_bytes() == (v020 / "mam-install.pyz").read_bytes()
    assert os.access(installed(), os.X_OK)
    shown = run(installed(), "--version")
    assert shown.stdout.startswith("mam-install 0.2.0 "), shown.stderr
    again = run(installed(), "--json", "self", "update", "--from", url)
    assert again.returncode == 0, again.stderr
    assert '"applied": false' in again.stdout
    downgrade = run(installed(), "self", "update", "--from", publish(serve, v010, "/v010/"))
    assert downgrade.returncode == 5
    assert "refusing to downgrade mam-install from 0.2.0 to 0.1.0" in downgrade.stderr
    assert installed().read_bytes() == (v020 / "mam-install.pyz").read_bytes()
    removed = run(installed(), "self", "uninstall")
    assert removed.returncode == 0, removed.stderr
    assert not installed().exists()


def test_uninstall_all_removes_the_installer_on_path_after_self_update(v010, v020, serve, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    done = run(v010 / "mam-install.pyz", "install", "-y", "--workspace", str(ws))
    assert done.returncode == 0, done.stderr
    assert installed().read_bytes() == (v010 / "mam-install.pyz").read_bytes()
    updated = run(installed(), "self", "update", "--from", publish(serve, v020, "/v020/"))
    assert updated.returncode == 0, updated.stderr
    # the host receipt still names 0.1.0's bytes: only --all's own rule removes this copy
    gone = run(installed(), "uninstall", "--all", "-y", "--workspace", str(ws))
    assert gone.returncode == 0, gone.stderr
    assert not installed().exists()
    assert not (ws / "AGENT.md").exists() and not (ws / ".mam").exists()


def test_an_unsigned_release_is_refused_unless_pinned(v010, v020, serve, tmp_path):
    unsigned = copy_without(v020, tmp_path / "unsigned", "SHA256SUMS.ed25519")
    url = publish(serve, unsigned, "/unsigned/")
    refused = run(v010 / "mam-install.pyz", "self", "update", "--from", url)
    assert refused.returncode == 5
    assert "nothing vouches" in refused.stderr and not installed().exists()
    assert serve.hits("/unsigned/mam-install.pyz") == 0, "refused before the pyz was fetched"
    pin = sha((unsigned / "mam-install.pyz").read_bytes())
    pinned = run(v010 / "mam-install.pyz", "self", "update", "--from", url, "--sha256", pin)
    assert pinned.returncode == 0, pinned.stderr
    assert run(installed(), "--version").stdout.startswith("mam-install 0.2.0 ")


def test_a_tampered_release_is_refused(v010, v020, serve, tmp_path):
    """A mirror swaps the pyz (here: for 0.1.0's, renamed nothing) and regenerates SHA256SUMS
    around it, keeping the genuine signature."""
    tampered = copy_without(v020, tmp_path / "tampered")
    shutil.copy(v010 / "mam-install.pyz", tampered / "mam-install.pyz")
    names = [p.name for p in tampered.iterdir() if p.name.startswith(("mam-", "manifest-", "get-"))]
    entries = {n: sha((tampered / n).read_bytes()) for n in names}
    (tampered / "SHA256SUMS").write_bytes(format_sums(entries))
    done = run(v010 / "mam-install.pyz", "self", "update", "--from",
               publish(serve, tampered, "/tampered/"))  # fmt: skip
    assert done.returncode == 5
    assert "does not verify" in done.stderr
    assert not installed().exists()


def test_a_release_url_that_does_not_answer_is_a_network_error(v010, tmp_path):
    with running_server() as gone:
        url = gone.url("/r")
    done = run(v010 / "mam-install.pyz", "self", "update", "--from", url, "--timeout", "2")
    assert done.returncode == 10, done.stderr
    assert not installed().exists()
