"""`install --from` a URL (a real local HTTP server), standard input, and a pinned git commit."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import cli
from subproc import command, environment
from workspaces import V1_FILES, expected_tree, tree, write_payload

from tests.release_server import ReleaseServer, running_server

V1 = expected_tree(V1_FILES)


@pytest.fixture
def server(releases: dict[str, Path]) -> Iterator[ReleaseServer]:
    from mam_install.release._sums import format_sums

    release = releases["1.0.0"]
    with running_server() as running:
        sums = {}
        for path in sorted(release.iterdir()):
            running.routes[f"/r/{path.name}"] = ReleaseServer.ok(path.read_bytes())
            sums[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        running.routes["/r/SHA256SUMS"] = ReleaseServer.ok(format_sums(sums))
        # A test release is vouched for by nothing the installer trusts: the user pins it.
        running.pin = hashlib.sha256(format_sums(sums)).hexdigest()  # type: ignore[attr-defined]
        yield running


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_install_from_a_url_verifies_and_caches_the_archive(server, tmp_path):
    archive = next(n for n in server.routes if n.endswith(".tar.gz"))
    for n in (1, 2):
        ws = tmp_path / f"ws{n}"
        run = cli(
            "install", "-y", "--no-host", "--workspace", ws, "--from", server.url("/r/"),
            "--sha256", server.pin,
        )  # fmt: skip
        assert run.exit_code == 0, run.stderr
        assert tree(ws) == V1
    assert server.hits(archive) == 1  # the second install came from the verified cache


def test_a_url_serving_wrong_bytes_is_refused_with_exit_5(server, tmp_path):
    archive = next(n for n in server.routes if n.endswith(".tar.gz"))
    server.routes[archive] = ReleaseServer.ok(b"\x1f\x8b" + b"\0" * 100)
    ws = tmp_path / "ws"
    ws.mkdir()
    run = cli(
        "install", "-y", "--no-host", "--workspace", ws, "--from", server.url("/r/"),
        "--sha256", server.pin,
    )  # fmt: skip
    assert run.exit_code == 5
    assert list(ws.iterdir()) == []


def test_a_url_serving_an_endless_archive_is_cut_off(server, tmp_path):
    archive = next(n for n in server.routes if n.endswith(".tar.gz"))
    server.routes[archive] = ReleaseServer.endless()
    ws = tmp_path / "ws"
    run = cli(
        "install", "-y", "--no-host", "--workspace", ws, "--from", server.url("/r/"),
        "--sha256", server.pin,
    )  # fmt: skip
    assert run.exit_code == 5
    assert not (ws / "AGENT.md").exists()


def archive_of(release: Path) -> tuple[Path, str]:
    archive = next(release.glob("*.tar.gz"))
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def test_install_from_stdin_with_a_pinned_hash(releases, tmp_path):
    archive, digest = archive_of(releases["1.0.0"])
    ws = tmp_path / "ws"
    with open(archive, "rb") as stdin:
        done = subprocess.run(
            command(
                "install", "-y", "--no-host", "--workspace", ws, "--from", "-", "--sha256", digest
            ),
            stdin=stdin,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    assert tree(ws) == V1


def test_stdin_with_a_wrong_hash_or_no_hash_is_refused(releases, tmp_path):
    archive, _digest = archive_of(releases["1.0.0"])
    ws = tmp_path / "ws"
    ws.mkdir()
    for extra, code in ((["--sha256", "0" * 64], 5), ([], 2)):
        with open(archive, "rb") as stdin:
            done = subprocess.run(
                command("install", "-y", "--no-host", "--workspace", ws, "--from", "-", *extra),
                stdin=stdin,
                env=environment(),
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert done.returncode == code, done.stderr
        assert list(ws.iterdir()) == []


@pytest.fixture
def git_repo(tmp_path: Path) -> tuple[Path, str]:
    """A repository laid out like mam-install's: payload/, payload/VERSION, manifests/."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from payload_archive import collect_payload, content_manifest, dumps

    repo = tmp_path / "repo"
    write_payload(repo / "payload", V1_FILES, "1.0.0")
    (repo / "manifests").mkdir()
    manifest = content_manifest(collect_payload(repo / "payload"), "1.0.0")
    (repo / "manifests/1.0.0.json").write_bytes(dumps(manifest))
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t",
    )
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "v1"], ["tag", "v1"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return repo, commit


def test_install_from_a_pinned_git_commit(git_repo, tmp_path):
    repo, commit = git_repo
    ws = tmp_path / "ws"
    run = cli(
        "install", "-y", "--no-host", "--workspace", ws, "--from", f"git+file://{repo}@{commit}"
    )
    assert run.exit_code == 0, run.stderr
    assert tree(ws) == V1
    status = cli("--json", "plan", "--workspace", ws, "--from", f"git+file://{repo}@{commit}")
    assert status.scope()["plan"]["source"]["commit"] == commit


def test_a_wrong_commit_or_a_bare_tag_is_refused(git_repo, tmp_path):
    repo, _commit = git_repo
    ws = tmp_path / "ws"
    ws.mkdir()
    wrong = cli(
        "install", "-y", "--no-host", "--workspace", ws, "--from", f"git+file://{repo}@{'1' * 40}"
    )
    assert wrong.exit_code == 5
    tag = cli("install", "-y", "--no-host", "--workspace", ws, "--from", f"git+file://{repo}@v1")
    assert tag.exit_code == 5 and "--allow-unpinned" in tag.stderr
    assert list(ws.iterdir()) == []
    allowed = cli(
        "install",
        "-y",
        "--no-host",
        "--workspace",
        ws,
        "--from",
        f"git+file://{repo}@v1",
        "--allow-unpinned",
    )
    assert allowed.exit_code == 0
    assert "not pinned" in allowed.stderr
    assert tree(ws) == V1


def test_a_git_checkout_whose_files_do_not_match_its_manifest_is_refused(git_repo, tmp_path):
    repo, _ = git_repo
    (repo / "payload/workspace/AGENT.md").write_text("tampered\n")
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t",
    )
    subprocess.run(["git", "-C", str(repo), "commit", "-qam", "tamper"], check=True, env=env)
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    ws = tmp_path / "ws"
    ws.mkdir()
    run = cli(
        "install", "-y", "--no-host", "--workspace", ws, "--from", f"git+file://{repo}@{commit}"
    )
    assert run.exit_code == 5 and "AGENT.md" in run.stderr
    assert list(ws.iterdir()) == []
