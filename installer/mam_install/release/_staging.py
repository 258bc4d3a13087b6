"""The private staging directory where a payload is copied, checked and unpacked before use."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from .._errors import IntegrityError
from .._hashing import CHUNK_SIZE
from ._archive import extract_verified
from ._manifest import SCOPES, ArchiveRef, Manifest, ManifestFile, Scope

# Fixed names inside a staging directory, whatever the release calls its files: a name chosen by
# a manifest or a user can never collide with another staged file.
ARCHIVE_NAME = "archive.tar.gz"
PAYLOAD_DIR = "payload"


class Staging:
    """A fresh ``mkdtemp`` directory (mode 0700), removed when the run ends however it ends."""

    def __init__(self, prefix: str = "mam-install-") -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        os.chmod(self.path, 0o700)

    def __enter__(self) -> Staging:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@dataclass(frozen=True)
class StagedPayload:
    """A payload whose every file has been verified against its manifest, and whose files of
    ``scopes`` (those the run will place) are in ``root``."""

    manifest: Manifest
    root: Path
    scopes: frozenset[str] = frozenset(SCOPES)

    def path_of(self, entry: ManifestFile) -> Path:
        return self.root / entry.member

    def holds(self, scope: Scope) -> bool:
        """Whether the files of ``scope`` were written to ``root`` (all were verified)."""
        return scope in self.scopes


def copy_capped(
    source: BinaryIO, dest: Path | None, limit: int, origin: str
) -> tuple[str, int]:
    """Copy at most ``limit`` bytes into a new file (with ``dest`` None, only read them); return
    (sha256, size). Longer is refused."""
    digest = hashlib.sha256()
    size = 0
    out = None
    if dest is not None:
        out = os.fdopen(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
    try:
        while True:
            chunk = source.read(CHUNK_SIZE)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise IntegrityError(f"{origin}: longer than the {limit} bytes expected; refusing")
            digest.update(chunk)
            if out is not None:
                out.write(chunk)
    finally:
        if out is not None:
            out.close()
    return digest.hexdigest(), size


def _archive_ref(manifest: Manifest, origin: str) -> ArchiveRef:
    if manifest.archive is None:
        raise IntegrityError(f"{origin}: the manifest names no archive hash; refusing to install")
    return manifest.archive


def stage_archive(
    source: BinaryIO,
    manifest: Manifest,
    staging: Staging,
    origin: str,
    unlisted: list[str] | None = None,
    scopes: Collection[str] = SCOPES,
) -> StagedPayload:
    """Copy the archive into staging, check its size and hash, then unpack and check every file
    (writing those of ``scopes``)."""
    archive = staging.path / ARCHIVE_NAME
    sha256, size = copy_capped(source, archive, _archive_ref(manifest, origin).size, origin)
    return unpack_staged(archive, sha256, size, manifest, staging, origin, unlisted, scopes)


def unpack_staged(
    archive: Path,
    sha256: str,
    size: int,
    manifest: Manifest,
    staging: Staging,
    origin: str,
    unlisted: list[str] | None = None,
    scopes: Collection[str] = SCOPES,
) -> StagedPayload:
    """Unpack an archive already copied into staging, once its size and hash match the manifest:
    every member is checked and hashed in one pass, and only the files of ``scopes`` (those the
    run will place) are written."""
    _check_ref(_archive_ref(manifest, origin), sha256, size, origin)
    root = staging.path / PAYLOAD_DIR
    root.mkdir(mode=0o700)
    extract_verified(archive, manifest, root, unlisted, origin, scopes=scopes)
    return StagedPayload(manifest=manifest, root=root, scopes=frozenset(scopes))


class _CappedHashingReader:
    """A reader over ``source`` that hashes and counts what passes through and refuses more
    than ``limit`` bytes: the archive's size and SHA-256 come from the read that unpacks it."""

    def __init__(self, source: BinaryIO, limit: int, origin: str) -> None:
        self.source, self.limit, self.origin = source, limit, origin
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        want = self.limit + 1 - self.size
        chunk = self.source.read(want if size < 0 else min(size, want))
        self.size += len(chunk)
        if self.size > self.limit:
            raise IntegrityError(
                f"{self.origin}: longer than the {self.limit} bytes expected; refusing"
            )
        self.digest.update(chunk)
        return chunk

    def finish(self) -> tuple[str, int]:
        """Read to the end (bytes after the tar's end count too); return (sha256, size)."""
        while self.read(CHUNK_SIZE):
            pass
        return self.digest.hexdigest(), self.size


def verify_archive(
    source: BinaryIO,
    manifest: Manifest,
    origin: str,
    unlisted: list[str] | None = None,
    extras: dict[str, bytes | None] | None = None,
) -> None:
    """`verify`'s check of an archive in one streaming pass that writes nothing: its size and
    SHA-256 against the manifest, and every member's rules and hash. A damaged archive is
    reported by its hash when that differs, whatever member failed first."""
    ref = _archive_ref(manifest, origin)
    reader = _CappedHashingReader(source, ref.size, origin)
    try:
        extract_verified(reader, manifest, None, unlisted, origin, extras)  # type: ignore[arg-type]
    except IntegrityError:
        sha256, size = reader.finish()
        _check_ref(ref, sha256, size, origin)
        raise
    sha256, size = reader.finish()
    _check_ref(ref, sha256, size, origin)


def _check_ref(ref: ArchiveRef, sha256: str, size: int, origin: str) -> None:
    if size != ref.size:
        raise IntegrityError(f"{origin}: {size} bytes, the manifest says {ref.size}; refusing")
    if sha256 != ref.sha256:
        raise IntegrityError(
            f"{origin}: SHA-256 {sha256} does not match the manifest's {ref.sha256}; refusing"
        )
