"""Resolving ``--from`` (release dir, manifest, bare archive), staged and verified first."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import stat
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mam_install._errors import ExitCode, IntegrityError, UsageError
from mam_install.release._sources import SourceSpec, Staged, stage_source
from mam_install.release._staging import Staging

from scripts.payload_archive import (
    PayloadFile,
    archive_bytes,
    build_payload,
    collect_payload,
    content_manifest,
)

VERSION = "0.1.0"
PAYLOAD = {
    "workspace/AGENT.md": (b"# agents\n", 0o644),
    "workspace/.env.example": (b"MAM_BROKER=localhost\n", 0o644),
    "workspace/.agents/skills/lib.sh": (b"#!/bin/sh\nmam_root() { :; }\n", 0o755),
    "host/units/systemd/mam-tmux-holder.service": (b"[Unit]\nDescription=holder\n", 0o644),
}


def snapshot(root: Path) -> dict[str, str]:
    """Path -> sha256 (or 'dir') of everything under ``root``, to prove it was not changed."""
    return {
        p.relative_to(root).as_posix(): "dir" if p.is_dir() else hashlib.sha256(
            p.read_bytes()
        ).hexdigest()
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def payload_dir(tmp_path: Path) -> Path:
    root = tmp_path / "payload"
    for member, (data, mode) in PAYLOAD.items():
        path = root / member
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    (root / "VERSION").write_text(VERSION + "\n")
    return root


@pytest.fixture
def release(tmp_path: Path, payload_dir: Path) -> Path:
    """``dist/`` with mam-payload-0.1.0.tar.gz and manifest-0.1.0.json, as the release makes it."""
    dist = tmp_path / "dist"
    build_payload(payload_dir, dist, mtime=1_700_000_000)
    return dist


@pytest.fixture
def staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Staging]:
    """A Staging in ``tmp_path/tmp``; afterwards that directory must be empty again."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    with Staging() as staging:
        yield staging
    assert list(root.iterdir()) == []


def archive_of(dist: Path) -> Path:
    return dist / f"mam-payload-{VERSION}.tar.gz"


def manifest_of(dist: Path) -> Path:
    return dist / f"manifest-{VERSION}.json"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_staged_payload(staged: Staged, staging: Staging) -> None:
    """Every payload file is in staging with its bytes and the manifest's mode, nothing more."""
    root = staged.payload.root
    assert root.parent == staging.path
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert files == set(PAYLOAD)
    for member, (data, mode) in PAYLOAD.items():
        assert (root / member).read_bytes() == data
        assert stat.S_IMODE((root / member).stat().st_mode) == mode
    assert {f.member for f in staged.payload.manifest.files} == set(PAYLOAD)
    assert staged.payload.manifest.version == VERSION


def integrity(caught: pytest.ExceptionInfo[IntegrityError], *names: str) -> str:
    assert caught.value.exit_code is ExitCode.INTEGRITY
    assert int(caught.value.exit_code) == 5
    message = str(caught.value)
    for name in names:
        assert name in message
    return message


def usage(caught: pytest.ExceptionInfo[UsageError], *names: str) -> str:
    assert caught.value.exit_code is ExitCode.USAGE
    assert int(caught.value.exit_code) == 2
    message = str(caught.value)
    for name in names:
        assert name in message
    return message


def bare_archive(tmp_path: Path, data: bytes, name: str = "downloaded.tar.gz") -> Path:
    """``data`` alone in a directory of its own, so no sibling manifest can be found."""
    directory = tmp_path / "bare"
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return path


def tar_gz(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


# --- release directory and manifest file ------------------------------------------------------


def pinned(location: Path, release: Path) -> SourceSpec:
    """``--from location --sha256 <its manifest's SHA-256>``: a test release is no release this
    installer embeds or that its key signed, so the user must pin it (see test_trust.py)."""
    return SourceSpec(str(location), sha(manifest_of(release)))


def test_release_directory_is_staged_and_verified(release: Path, staging: Staging) -> None:
    before = snapshot(release)
    staged = stage_source(pinned(release, release), staging)
    assert_staged_payload(staged, staging)
    assert staged.origin == str(release)
    assert staged.record == {
        "manifest_sha256": sha(manifest_of(release)),
        "trust": "pinned",
        "pin": "manifest",
    }
    assert snapshot(release) == before


def test_manifest_file_is_staged_with_the_archive_beside_it(
    release: Path, staging: Staging
) -> None:
    staged = stage_source(pinned(manifest_of(release), release), staging)
    assert_staged_payload(staged, staging)
    assert staged.origin == str(manifest_of(release))
    assert staged.record["manifest_sha256"] == sha(manifest_of(release))


def test_home_relative_location_is_expanded(
    release: Path, staging: Staging, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(release.parent))
    staged = stage_source(SourceSpec("~/dist", sha(manifest_of(release))), staging)
    assert_staged_payload(staged, staging)


def test_release_directory_with_two_manifests_is_a_usage_error(
    release: Path, staging: Staging
) -> None:
    shutil.copy(manifest_of(release), release / "manifest-0.0.9.json")
    with pytest.raises(UsageError) as caught:
        stage_source(SourceSpec(str(release)), staging)
    usage(caught, str(release), "found 2")
    assert list(staging.path.iterdir()) == []


def test_release_directory_without_a_manifest_is_a_usage_error(
    release: Path, staging: Staging
) -> None:
    manifest_of(release).unlink()
    with pytest.raises(UsageError) as caught:
        stage_source(SourceSpec(str(release)), staging)
    usage(caught, str(release), "found 0")


def test_manifest_whose_archive_is_missing_is_refused(release: Path, staging: Staging) -> None:
    archive_of(release).unlink()
    with pytest.raises(IntegrityError) as caught:
        stage_source(pinned(release, release), staging)
    integrity(caught, str(archive_of(release)), "cannot read the archive")
    assert list(staging.path.iterdir()) == []


def test_tampered_archive_in_a_release_directory_is_refused_before_unpacking(
    release: Path, staging: Staging
) -> None:
    data = bytearray(archive_of(release).read_bytes())
    data[len(data) // 2] ^= 0x01
    archive_of(release).write_bytes(bytes(data))
    before = snapshot(release)
    with pytest.raises(IntegrityError) as caught:
        stage_source(pinned(release, release), staging)
    integrity(caught, str(archive_of(release)), "does not match the manifest")
    assert not (staging.path / "payload").exists()
    assert snapshot(release) == before


def test_archive_swapped_for_another_valid_archive_is_refused(
    release: Path, staging: Staging, payload_dir: Path
) -> None:
    (payload_dir / "workspace" / "AGENT.md").write_bytes(b"# agents, but not reviewed\n")
    files = collect_payload(payload_dir)
    archive_of(release).write_bytes(archive_bytes(files, content_manifest(files, VERSION), 0))
    with pytest.raises(IntegrityError) as caught:
        stage_source(pinned(release, release), staging)
    integrity(caught, str(archive_of(release)))
    assert not (staging.path / "payload").exists()


def test_manifest_that_names_no_archive_is_refused(
    tmp_path: Path, payload_dir: Path, staging: Staging
) -> None:
    files = collect_payload(payload_dir)
    path = tmp_path / "content-manifest.json"
    path.write_text(json.dumps(content_manifest(files, VERSION)))
    with pytest.raises(IntegrityError) as caught:
        stage_source(SourceSpec(str(path)), staging)
    integrity(caught, str(path), "names no archive")


def test_hostile_manifest_in_a_release_directory_is_refused(
    release: Path, staging: Staging
) -> None:
    doc = json.loads(manifest_of(release).read_text())
    doc["files"][0]["path"] = "../.bashrc"
    manifest_of(release).write_text(json.dumps(doc))
    with pytest.raises(IntegrityError) as caught:
        stage_source(SourceSpec(str(release)), staging)
    integrity(caught, str(manifest_of(release)), "'../.bashrc'")
    assert list(staging.path.iterdir()) == []


# --- bare archive -----------------------------------------------------------------------------


def test_bare_archive_with_the_right_sha256_is_staged(
    tmp_path: Path, release: Path, staging: Staging
) -> None:
    path = bare_archive(tmp_path, archive_of(release).read_bytes())
    staged = stage_source(SourceSpec(str(path), sha(path)), staging)
    assert_staged_payload(staged, staging)
    assert staged.origin == str(path)
    assert staged.record == {"archive_sha256": sha(path), "trust": "pinned"}
    assert staged.payload.manifest.archive is not None
    assert staged.payload.manifest.archive.sha256 == sha(path)


def test_bare_archive_with_the_wrong_sha256_is_refused(
    tmp_path: Path, release: Path, staging: Staging
) -> None:
    path = bare_archive(tmp_path, archive_of(release).read_bytes())
    pinned = "0" * 64
    with pytest.raises(IntegrityError) as caught:
        stage_source(SourceSpec(str(path), pinned), staging)
    integrity(caught, str(path), pinned, sha(path))
    assert not (staging.path / "payload").exists()


@pytest.mark.parametrize("pin", ["A" * 64, "a" * 63, "xyz", "", " " + "a" * 63])
def test_malformed_sha256_is_a_usage_error(
    tmp_path: Path, release: Path, staging: Staging, pin: str
) -> None:
    path = bare_archive(tmp_path, archive_of(release).read_bytes())
    with pytest.raises(UsageError) as caught:
        stage_source(SourceSpec(str(path), pin), staging)
    usage(caught, "--sha256")
    assert list(staging.path.iterdir()) == []


def test_bare_archive_without_sha256_or_sibling_manifest_is_a_usage_error(
    tmp_path: Path, release: Path, staging: Staging
) -> None:
    path = bare_archive(tmp_path, archive_of(release).read_bytes())
    with pytest.raises(UsageError) as caught:
        stage_source(SourceSpec(str(path)), staging)
    usage(caught, str(path), "--sha256")
    assert list(staging.path.iterdir()) == []


def test_release_named_archive_without_sibling_manifest_is_a_usage_error(
    tmp_path: Path, release: Path, staging: Staging
) -> None:
    path = bare_archive(tmp_path, archive_of(release).read_bytes(), archive_of(release).name)
    with pytest.raises(UsageError) as caught:
        stage_source(SourceSpec(str(path)), staging)
    usage(caught, str(path))


def test_bare_archive_uses_its_sibling_manifest_which_must_be_vouched_for(
    release: Path, staging: Staging
) -> None:
    with pytest.raises(IntegrityError) as caught:
        stage_source(SourceSpec(str(archive_of(release))), staging)
    integrity(caught, str(release), "nothing vouches", "--sha256")
    assert list(staging.path.iterdir()) == []


def test_bare_archive_that_does_not_match_its_sibling_manifest_is_refused(
    release: Path, staging: Staging
) -> None:
    data = bytearray(archive_of(release).read_bytes())
    data[-20] ^= 0xFF
    archive_of(release).write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as caught:
        stage_source(SourceSpec(str(archive_of(release))), staging)
    integrity(caught, str(release))


def test_missing_location_is_a_usage_error(tmp_path: Path, staging: Staging) -> None:
    with pytest.raises(UsageError) as caught:
        stage_source(SourceSpec(str(tmp_path / "nowhere.tar.gz")), staging)
    usage(caught, str(tmp_path / "nowhere.tar.gz"), "no such file")


def test_pinned_archive_without_an_inner_manifest_is_refused(
    tmp_path: Path, staging: Staging
) -> None:
    path = bare_archive(tmp_path, tar_gz({"workspace/AGENT.md": b"# agents\n"}))
    with pytest.raises(IntegrityError) as caught:
        stage_source(SourceSpec(str(path), sha(path)), staging)
    integrity(caught, str(path), "holds no manifest.json")


def test_pinned_archive_that_is_not_gzip_is_refused(tmp_path: Path, staging: Staging) -> None:
    path = bare_archive(tmp_path, b"<html>not found</html>\n")
    with pytest.raises(IntegrityError) as caught:
        stage_source(SourceSpec(str(path), sha(path)), staging)
    integrity(caught, str(path), "not a readable .tar.gz")


def _inner(files: list[PayloadFile], doc_edit: dict[str, object] | None = None) -> bytes:
    content = content_manifest(files, VERSION)
    if doc_edit:
        content["files"][0].update(doc_edit)
    return archive_bytes(files, content, 0)


def test_pinned_archive_whose_inner_manifest_leaves_the_allowlist_is_refused(
    tmp_path: Path, staging: Staging
) -> None:
    files = [PayloadFile("workspace", "AGENT.md", b"# a\n", 0o644)]
    path = bare_archive(tmp_path, _inner(files, {"path": ".git/hooks/post-checkout"}))
    with pytest.raises(IntegrityError) as caught:
        stage_source(SourceSpec(str(path), sha(path)), staging)
    integrity(caught, str(path), "'.git/hooks/post-checkout'", "allowlist")
    assert not (staging.path / "payload").exists()


def test_pinned_archive_whose_inner_manifest_lies_about_a_hash_is_refused(
    tmp_path: Path, staging: Staging
) -> None:
    files = [PayloadFile("workspace", "AGENT.md", b"# a\n", 0o644)]
    path = bare_archive(tmp_path, _inner(files, {"sha256": "b" * 64}))
    with pytest.raises(IntegrityError) as caught:
        stage_source(SourceSpec(str(path), sha(path)), staging)
    integrity(caught, str(path.name), "'workspace/AGENT.md' has SHA-256")


def test_pinned_archive_with_two_inner_manifests_is_refused(
    tmp_path: Path, staging: Staging
) -> None:
    files = [PayloadFile("workspace", "AGENT.md", b"# a\n", 0o644)]
    good = json.dumps(content_manifest(files, VERSION)).encode()
    other = json.dumps(content_manifest(files, "9.9.9")).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (("manifest.json", good), ("workspace/AGENT.md", b"# a\n"),
                           ("manifest.json", other)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = bare_archive(tmp_path, gzip.compress(raw.getvalue(), mtime=0))
    with pytest.raises(IntegrityError) as caught:
        stage_source(SourceSpec(str(path), sha(path)), staging)
    integrity(caught, "'manifest.json' appears twice")


# --- bugs -------------------------------------------------------------------------------------


def test_release_directory_with_sigstore_bundles_is_staged(release: Path, staging: Staging) -> None:
    for artifact in (manifest_of(release), archive_of(release)):
        artifact.with_name(artifact.name + ".sigstore.json").write_text('{"mediaType": "x"}\n')
    staged = stage_source(pinned(release, release), staging)
    assert_staged_payload(staged, staging)


@pytest.mark.parametrize("target", ["directory", "manifest"])
def test_sha256_pin_is_not_silently_ignored_for_a_release_directory(
    release: Path, staging: Staging, target: str
) -> None:
    location = release if target == "directory" else manifest_of(release)
    with pytest.raises((IntegrityError, UsageError)) as caught:
        stage_source(SourceSpec(str(location), "0" * 64), staging)
    assert caught.value.exit_code in (ExitCode.INTEGRITY, ExitCode.USAGE)


@pytest.mark.parametrize("name", ["pinned-archive.tar.gz", "payload"])
def test_pinned_archive_is_staged_whatever_its_file_name(
    tmp_path: Path, release: Path, staging: Staging, name: str
) -> None:
    path = bare_archive(tmp_path, archive_of(release).read_bytes(), name)
    staged = stage_source(SourceSpec(str(path), sha(path)), staging)
    assert_staged_payload(staged, staging)


# --- standard input ---------------------------------------------------------------------------


@pytest.fixture
def stdin_from(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """Make ``sys.stdin`` read the given file, as `mam-install install --from - < FILE` would."""
    opened: list[io.TextIOWrapper] = []

    def use(path: Path) -> None:
        stream = io.TextIOWrapper(open(path, "rb"))  # noqa: SIM115 - closed after the test
        opened.append(stream)
        monkeypatch.setattr(sys, "stdin", stream)

    yield use
    for stream in opened:
        stream.close()


def test_archive_on_stdin_without_sha256_is_a_usage_error(
    release: Path, staging: Staging, stdin_from: Callable[[Path], None]
) -> None:
    stdin_from(archive_of(release))
    with pytest.raises(UsageError) as caught:
        stage_source(SourceSpec("-"), staging)
    usage(caught, "--from -", "--sha256")
    assert list(staging.path.iterdir()) == []


def test_archive_on_stdin_with_the_wrong_sha256_is_refused(
    release: Path, staging: Staging, stdin_from: Callable[[Path], None]
) -> None:
    stdin_from(archive_of(release))
    with pytest.raises(IntegrityError) as caught:
        stage_source(SourceSpec("-", "0" * 64), staging)
    integrity(caught, "0" * 64, sha(archive_of(release)))
    assert not (staging.path / "payload").exists()


def test_archive_on_stdin_with_the_right_sha256_is_staged(
    release: Path, staging: Staging, stdin_from: Callable[[Path], None]
) -> None:
    stdin_from(archive_of(release))
    staged = stage_source(SourceSpec("-", sha(archive_of(release))), staging)
    assert_staged_payload(staged, staging)
    assert staged.origin == "stdin"
    assert staged.record == {"archive_sha256": sha(archive_of(release)), "trust": "pinned"}
