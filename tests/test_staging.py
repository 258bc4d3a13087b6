"""The private staging directory and the archive checks done in it before anything is unpacked."""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import pytest
from mam_install._errors import ExitCode, IntegrityError
from mam_install._hashing import CHUNK_SIZE
from mam_install.release import _staging
from mam_install.release._manifest import Manifest, parse_manifest
from mam_install.release._staging import StagedPayload, Staging, copy_capped, stage_archive

from scripts.payload_archive import (
    PayloadFile,
    archive_bytes,
    content_manifest,
    dumps,
    release_manifest,
)

FILES = [
    PayloadFile("workspace", "AGENT.md", b"# agents\n", 0o644),
    PayloadFile("workspace", ".agents/skills/tmux/send-message.sh", b"#!/bin/sh\n:\n", 0o755),
    PayloadFile("host", "tools/mam-tmux-holder.sh", b"#!/bin/sh\nexec tmux\n", 0o755),
]
ARCHIVE_NAME = "mam-payload-0.1.0.tar.gz"
STAGED_ARCHIVE = _staging.ARCHIVE_NAME  # the fixed name of the copy inside staging


class EndlessStream(io.RawIOBase):
    """``prefix`` and then zeros forever, drawn from a generator; counts what it served."""

    def __init__(self, prefix: bytes = b"") -> None:
        self.served = 0
        self._chunks: Iterator[bytes] = itertools.chain(
            [prefix] if prefix else [], itertools.repeat(b"\0" * 65536)
        )
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            self._pending = next(self._chunks)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        self.served += count
        return count


def release(files: list[PayloadFile] = FILES, name: str = ARCHIVE_NAME) -> tuple[bytes, Manifest]:
    """A genuine archive and its parsed release manifest, as the release scripts make them."""
    content = content_manifest(files, "0.1.0")
    data = archive_bytes(files, content, mtime=0)
    doc = release_manifest(content, name, data, None)
    return data, parse_manifest(dumps(doc), f"manifest-0.1.0.json ({name})")


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.fixture
def tmp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point tempfile at ``tmp_path/tmp``: every staging directory lands where the test looks."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def refused(exc: pytest.ExceptionInfo[IntegrityError], *names: str) -> str:
    assert exc.value.exit_code is ExitCode.INTEGRITY
    assert int(exc.value.exit_code) == 5
    message = str(exc.value)
    for name in names:
        assert name in message
    return message


# --- Staging ----------------------------------------------------------------------------------


def test_staging_is_a_fresh_private_directory_under_the_temp_dir(tmp_root: Path) -> None:
    with Staging() as first, Staging() as second:
        for staging in (first, second):
            assert staging.path.parent == tmp_root
            assert staging.path.name.startswith("mam-install-")
            st = os.lstat(staging.path)
            assert stat.S_ISDIR(st.st_mode)
            assert stat.S_IMODE(st.st_mode) == 0o700
            assert list(staging.path.iterdir()) == []
        assert first.path != second.path
    assert listing(tmp_root) == []


def test_staging_is_0700_even_under_a_permissive_umask(tmp_root: Path) -> None:
    old = os.umask(0)
    try:
        with Staging() as staging:
            assert stat.S_IMODE(os.lstat(staging.path).st_mode) == 0o700
    finally:
        os.umask(old)


def test_staging_is_removed_with_its_contents_on_normal_exit(tmp_root: Path) -> None:
    with Staging(prefix="mam-test-") as staging:
        (staging.path / "payload" / "workspace").mkdir(parents=True)
        (staging.path / "payload" / "workspace" / "AGENT.md").write_text("x")
        (staging.path / "archive.tar.gz").write_bytes(b"x")
        assert staging.path.name.startswith("mam-test-")
    assert not staging.path.exists()
    assert listing(tmp_root) == []


def test_staging_is_removed_when_an_exception_escapes_and_the_exception_is_kept(
    tmp_root: Path,
) -> None:
    with pytest.raises(IntegrityError, match="boom") as caught, Staging() as staging:
        (staging.path / "partial").write_bytes(b"half")
        raise IntegrityError("boom")
    assert caught.value.exit_code == ExitCode.INTEGRITY
    assert not staging.path.exists()
    assert listing(tmp_root) == []


def test_staging_is_removed_on_keyboard_interrupt(tmp_root: Path) -> None:
    with pytest.raises(KeyboardInterrupt), Staging() as staging:
        (staging.path / "x").write_bytes(b"x")
        raise KeyboardInterrupt
    assert not staging.path.exists()


def test_staging_cleanup_is_idempotent(tmp_root: Path) -> None:
    staging = Staging()
    staging.cleanup()
    staging.cleanup()
    assert not staging.path.exists()


# --- copy_capped ------------------------------------------------------------------------------


def test_copy_capped_copies_up_to_the_limit_and_returns_hash_and_size(tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE + 123)
    dest = tmp_path / "copy"
    sha256, size = copy_capped(io.BytesIO(data), dest, len(data), "src")
    assert (sha256, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert dest.read_bytes() == data
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600


def test_copy_capped_refuses_one_byte_over_the_limit(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError) as caught:
        copy_capped(io.BytesIO(b"x" * 11), tmp_path / "copy", 10, "https://example.org/p.tar.gz")
    refused(caught, "https://example.org/p.tar.gz", "10 bytes")
    assert (tmp_path / "copy").stat().st_size <= 10


def test_copy_capped_stops_reading_an_endless_stream(tmp_path: Path) -> None:
    stream = EndlessStream()
    limit = 3 * CHUNK_SIZE + 17
    with pytest.raises(IntegrityError) as caught:
        copy_capped(cast(BinaryIO, stream), tmp_path / "copy", limit, "endless")
    refused(caught, "endless")
    assert limit < stream.served <= limit + CHUNK_SIZE
    assert (tmp_path / "copy").stat().st_size <= limit


def test_copy_capped_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    dest.write_bytes(b"already here")
    with pytest.raises(FileExistsError):
        copy_capped(io.BytesIO(b"new"), dest, 100, "src")
    assert dest.read_bytes() == b"already here"


# --- stage_archive ----------------------------------------------------------------------------


def test_genuine_archive_is_staged_and_every_file_verified(tmp_root: Path) -> None:
    data, manifest = release()
    with Staging() as staging:
        staged = stage_archive(io.BytesIO(data), manifest, staging, "release/" + ARCHIVE_NAME)
        assert isinstance(staged, StagedPayload)
        assert staged.manifest is manifest
        assert staged.root == staging.path / "payload"
        assert stat.S_IMODE(staged.root.stat().st_mode) == 0o700
        entries = manifest.by_member()
        for f in FILES:
            path = staged.path_of(entries[f.member])
            assert path == staged.root / f.member
            assert path.read_bytes() == f.data
            assert stat.S_IMODE(path.stat().st_mode) == f.mode
        # The archive copy stays in staging; unlisted manifest.json was not extracted.
        assert (staging.path / STAGED_ARCHIVE).read_bytes() == data
        assert not (staged.root / "manifest.json").exists()
    assert listing(tmp_root) == []


def test_archive_shorter_than_the_manifest_size_is_refused_before_unpacking(
    tmp_root: Path,
) -> None:
    data, manifest = release()
    with Staging() as staging:
        with pytest.raises(IntegrityError) as caught:
            stage_archive(io.BytesIO(data[:-1]), manifest, staging, "short.tar.gz")
        refused(caught, "short.tar.gz", f"{len(data) - 1} bytes", f"says {len(data)}")
        assert not (staging.path / "payload").exists()


def test_archive_with_the_right_size_and_wrong_hash_is_refused_before_unpacking(
    tmp_root: Path,
) -> None:
    data, manifest = release()
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0x01
    with Staging() as staging:
        with pytest.raises(IntegrityError) as caught:
            stage_archive(io.BytesIO(bytes(tampered)), manifest, staging, "tampered.tar.gz")
        assert manifest.archive is not None
        refused(caught, "tampered.tar.gz", manifest.archive.sha256,
                hashlib.sha256(tampered).hexdigest())
        assert not (staging.path / "payload").exists()


def test_archive_stream_longer_than_the_manifest_size_is_cut_off(tmp_root: Path) -> None:
    data, manifest = release()
    stream = EndlessStream(prefix=data)
    with Staging() as staging:
        with pytest.raises(IntegrityError) as caught:
            stage_archive(cast(BinaryIO, stream), manifest, staging, "endless.tar.gz")
        refused(caught, "endless.tar.gz", f"{len(data)} bytes")
        assert stream.served <= len(data) + CHUNK_SIZE
        assert (staging.path / STAGED_ARCHIVE).stat().st_size <= len(data)
        assert not (staging.path / "payload").exists()
    assert listing(tmp_root) == []


def test_archive_with_one_trailing_byte_is_refused(tmp_root: Path) -> None:
    data, manifest = release()
    with Staging() as staging, pytest.raises(IntegrityError) as caught:
        stage_archive(io.BytesIO(data + b"\0"), manifest, staging, "long.tar.gz")
    refused(caught, "long.tar.gz")


def test_manifest_without_an_archive_hash_is_refused(tmp_root: Path) -> None:
    content = content_manifest(FILES, "0.1.0")
    manifest = parse_manifest(dumps(content), "content-manifest.json")
    assert manifest.archive is None
    with Staging() as staging:
        with pytest.raises(IntegrityError) as caught:
            stage_archive(io.BytesIO(b"anything"), manifest, staging, "x.tar.gz")
        refused(caught, "x.tar.gz", "names no archive hash")
        assert listing(staging.path) == []


def test_hostile_archive_pinned_by_a_compromised_manifest_is_still_refused(
    tmp_path: Path, tmp_root: Path
) -> None:
    """The archive hash matches, but a member is a symlink: member rules still apply."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        link = tarfile.TarInfo("workspace/.agents")
        link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path / "outside")
        tar.addfile(link)
        for f in FILES:
            info = tarfile.TarInfo(f.member)
            info.size, info.mode = len(f.data), f.mode
            tar.addfile(info, io.BytesIO(f.data))
    data = gzip.compress(raw.getvalue(), mtime=0)
    content = content_manifest(FILES, "0.1.0")
    manifest = parse_manifest(dumps(release_manifest(content, ARCHIVE_NAME, data, None)), "m")
    (tmp_path / "outside").mkdir()
    before = listing(tmp_path / "outside")
    with Staging() as staging, pytest.raises(IntegrityError) as caught:
        stage_archive(io.BytesIO(data), manifest, staging, "hostile.tar.gz")
    refused(caught, "'workspace/.agents' is a link")
    assert listing(tmp_path / "outside") == before == []
    assert listing(tmp_root) == []


def test_archive_named_payload_is_staged_or_refused_cleanly(tmp_root: Path) -> None:
    data, manifest = release(name="payload")
    assert manifest.archive is not None and manifest.archive.name == "payload"
    with Staging() as staging:
        try:
            staged = stage_archive(io.BytesIO(data), manifest, staging, "payload")
        except IntegrityError as exc:
            assert exc.exit_code == ExitCode.INTEGRITY
        else:
            assert staged.path_of(manifest.files[0]).read_bytes() == FILES[0].data
