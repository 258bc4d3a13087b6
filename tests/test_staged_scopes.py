"""Staging writes only what the run will place (a `--no-host` install unpacks no host file), yet
every member of the archive is still checked and hashed: a tampered host file fails a
`--no-host` install with exit 5 all the same."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import cli
from mam_install._feedback import ConsoleFeedback
from mam_install.release._lazy_source import LazyStaged
from mam_install.release._sources import SourceSpec
from mam_install.release._staging import PAYLOAD_DIR, Staging
from payload_archive import (
    archive_bytes,
    collect_payload,
    content_manifest,
    dumps,
    release_manifest,
)
from test_host_planner import host_release_fixture  # noqa: F401 - the host_release fixture
from workspaces import pinned, write_payload

HOST_TOOL = "host/tools/mam-tmux-holder.sh"


def staged_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def staged_at_cleanup(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """What each run's staging payload directory held when the run removed it."""
    seen: list[list[str]] = []
    cleanup = Staging.cleanup

    def snapshot(self: Staging) -> None:
        payload = self.path / PAYLOAD_DIR
        seen.append(staged_files(payload) if payload.is_dir() else [])
        cleanup(self)

    monkeypatch.setattr(Staging, "cleanup", snapshot)
    yield seen


def test_a_no_host_install_stages_only_the_workspace_files(host_release, tmp_path,
                                                           staged_at_cleanup):
    ws = tmp_path / "ws"
    ws.mkdir()
    done = cli("install", "-y", "--no-host", "--workspace", ws, *pinned(host_release["1.0.0"]))
    assert done.exit_code == 0, done.stderr
    assert staged_at_cleanup == [["workspace/AGENT.md"]]
    assert (ws / "AGENT.md").read_bytes() == b"# agents\n"


def test_an_install_with_the_host_stages_the_host_files_too(host_release, tmp_path,
                                                            staged_at_cleanup):
    ws = tmp_path / "ws"
    ws.mkdir()
    done = cli("install", "-y", "--no-units", "--workspace", ws, *pinned(host_release["1.0.0"]))
    assert done.exit_code == 0, done.stderr
    [staged] = staged_at_cleanup
    assert "workspace/AGENT.md" in staged and HOST_TOOL in staged
    manifest = next(host_release["1.0.0"].glob("manifest-*.json")).read_text()
    assert len(staged) == manifest.count('"path"')  # every file of the payload


def test_the_source_stages_the_scopes_it_is_given_and_verifies_them_all(host_release):
    spec = SourceSpec(*pinned(host_release["1.0.0"])[1::2])
    feedback = ConsoleFeedback(verbosity=-1)
    for scopes in (("workspace",), ("host",), ("workspace", "host")):
        with Staging() as staging:
            payload = LazyStaged(spec, staging, feedback, scopes=scopes).get().payload
            written = staged_files(payload.root)
            assert written == sorted(f.member for f in payload.manifest.files
                                     if f.scope in scopes)
            assert [payload.holds(s) for s in ("workspace", "host")] == [
                s in scopes for s in ("workspace", "host")
            ]
            for name in written:
                assert (payload.root / name).stat().st_mode & 0o777 == next(
                    f.mode for f in payload.manifest.files if f.member == name
                )


def tampered_release(base: Path, good: dict[str, tuple[bytes, int]]) -> Path:
    """A release whose manifest lists the good host tool but whose archive (which the manifest
    pins, so it passes the archive check) holds a tampered one of the same size."""
    data, mode = good[HOST_TOOL]
    bad = {**good, HOST_TOOL: (data[:-1] + (b"X" if data[-1:] != b"X" else b"Y"), mode)}
    content = content_manifest(collect_payload(write_payload(base / "good", good, "1.0.0")),
                               "1.0.0")
    archive = archive_bytes(collect_payload(write_payload(base / "bad", bad, "1.0.0")), content,
                            1_700_000_000)
    release = base / "release"
    release.mkdir()
    (release / "mam-payload-1.0.0.tar.gz").write_bytes(archive)
    manifest = release_manifest(content, "mam-payload-1.0.0.tar.gz", archive, None)
    (release / "manifest-1.0.0.json").write_bytes(dumps(manifest))
    return release


def test_a_tampered_host_file_fails_a_no_host_install_with_exit_5(host_release, tmp_path,
                                                                 staged_at_cleanup):
    from test_host_planner import real_host_files

    release = tampered_release(tmp_path / "tampered", real_host_files())
    ws = tmp_path / "ws"
    ws.mkdir()
    done = cli("install", "-y", "--no-host", "--workspace", ws, *pinned(release))
    assert done.exit_code == 5, done.stderr
    assert HOST_TOOL.split("/", 1)[1] in done.stderr and "SHA-256" in done.stderr
    assert os.listdir(ws) == []
    assert HOST_TOOL not in staged_at_cleanup[0]
    verify = cli("verify", release)
    assert verify.exit_code == 5 and "mam-tmux-holder.sh" in verify.stderr + verify.stdout
