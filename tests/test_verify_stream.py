"""`verify` checks an archive in one streaming pass that writes nothing to disk."""

from __future__ import annotations

import hashlib
import io
import tempfile
from pathlib import Path

import pytest
from mam_install._errors import ExitCode, IntegrityError
from mam_install.release._manifest import parse_manifest
from mam_install.release._staging import verify_archive
from test_staging import FILES, release

from scripts.payload_archive import PayloadFile, content_manifest, dumps, release_manifest


class CountingStream(io.BytesIO):
    """Counts every byte served, to prove the archive is read once."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.served = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.served += len(chunk)
        return chunk


@pytest.fixture
def no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_genuine_archive_is_read_once_hashed_whole_and_nothing_is_written(no_temp_files):
    data, manifest = release()
    stream = CountingStream(data)
    extras: dict[str, bytes | None] = {"manifest.json": None}
    unlisted: list[str] = []
    verify_archive(stream, manifest, "release.tar.gz", unlisted, extras)
    assert stream.served == len(data)
    assert unlisted == []
    assert extras["manifest.json"] is not None and b'"files"' in extras["manifest.json"]
    assert list(no_temp_files.iterdir()) == []


def test_a_flipped_byte_is_reported_as_the_archive_hash_whatever_member_fails_first(
    no_temp_files,
):
    data, manifest = release()
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(IntegrityError) as caught:
        verify_archive(io.BytesIO(bytes(tampered)), manifest, "tampered.tar.gz")
    assert caught.value.exit_code is ExitCode.INTEGRITY
    message = str(caught.value)
    assert "tampered.tar.gz" in message and hashlib.sha256(tampered).hexdigest() in message
    assert list(no_temp_files.iterdir()) == []


def test_trailing_bytes_after_the_tar_are_refused_by_size(no_temp_files):
    data, manifest = release()
    with pytest.raises(IntegrityError) as caught:
        verify_archive(io.BytesIO(data + b"\0"), manifest, "long.tar.gz")
    assert "long.tar.gz" in str(caught.value) and "longer than" in str(caught.value)


def test_a_member_that_differs_from_its_manifest_hash_is_refused_even_when_the_archive_hash_matches(
    no_temp_files,
):
    first = FILES[0]
    changed = PayloadFile(first.scope, first.path, b"# not the same\n", first.mode)
    other_data, _ = release([changed, *FILES[1:]])
    # A manifest that pins this archive but lists the genuine files' hashes.
    doc = release_manifest(content_manifest(FILES, "0.1.0"), "other.tar.gz", other_data, None)
    manifest = parse_manifest(dumps(doc), "manifest")
    with pytest.raises(IntegrityError) as caught:
        verify_archive(io.BytesIO(other_data), manifest, "other.tar.gz")
    assert "other.tar.gz" in str(caught.value) and first.member in str(caught.value)
