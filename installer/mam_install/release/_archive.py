"""Reading a payload archive without trusting it: member rules and our own extraction.

``tarfile``'s extraction filters are not relied on (the interpreters we support predate the 2025
filter-bypass fixes): every member is checked here, only regular files listed in the manifest are
written, each through ``O_EXCL|O_NOFOLLOW`` into a fresh staging directory, hashed as it is copied.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Collection
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, cast

from .._errors import IntegrityError
from ._manifest import MAX_FILES, SCOPES, Manifest, ManifestFile, check_relative_path

if TYPE_CHECKING:
    import tarfile

_COPY_CHUNK = 1 << 20
# Members the manifest does not list are skipped, but still counted: a bomb of unlisted members
# must not make us read forever.
MAX_MEMBERS = 4 * MAX_FILES
# Skipped members are still inflated, so the whole archive's inflated bytes are bounded too: the
# listed files (in 512-byte blocks), three header blocks per listed file and per directory or
# metadata member, and room for manifest.json and the end-of-archive padding.
_HEADER_ALLOWANCE = 3 * 512
_EXTRA_MEMBERS = 256
_SLACK = 2 << 20


def inflate_limit(manifest: Manifest) -> int:
    """How many bytes a genuine archive of ``manifest`` can inflate to, at most."""
    blocks = sum((f.size + 511) // 512 * 512 for f in manifest.files)
    members = 2 * len(manifest.files) + _EXTRA_MEMBERS
    return blocks + members * _HEADER_ALLOWANCE + _SLACK


class _BoundedInflate:
    """The archive's gzip stream that refuses to inflate past ``limit`` bytes (a tar bomb)."""

    def __init__(self, archive: Path | BinaryIO, limit: int, origin: str) -> None:
        import gzip

        self._stream = gzip.open(archive, "rb")  # noqa: SIM115 - closed by __exit__
        self._limit, self._origin, self._total = limit, origin, 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._total += len(data)
        if self._total > self._limit:
            raise IntegrityError(
                f"{self._origin}: inflates to more than {self._limit} bytes, more than its "
                "manifest's files can take (a decompression bomb); refusing"
            )
        return data

    def __enter__(self) -> _BoundedInflate:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()

# Top-level members outside the payload that a caller may ask to be handed back (verify compares
# the archive's own manifest.json), and how large one may be.
MAX_EXTRA_SIZE = 1 << 20


def check_member(member: tarfile.TarInfo, origin: str) -> None:
    """The per-member rules of DESIGN §4; raises IntegrityError naming the member."""
    name = member.name
    check_relative_path(name.rstrip("/") if member.isdir() else name, f"{origin}: member")
    if member.issym() or member.islnk():
        raise IntegrityError(f"{origin}: member {name!r} is a link; refusing the archive")
    if not (member.isreg() or member.isdir()):
        raise IntegrityError(
            f"{origin}: member {name!r} is a device, FIFO or other special file; refusing"
        )
    if member.mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX):
        raise IntegrityError(f"{origin}: member {name!r} has setuid/setgid/sticky bits; refusing")
    if member.isreg() and member.size < 0:
        raise IntegrityError(f"{origin}: member {name!r} has a negative size")


def extract_verified(
    archive: Path | BinaryIO,
    manifest: Manifest,
    dest: Path | None,
    unlisted: list[str] | None = None,
    origin: str | None = None,
    extras: dict[str, bytes | None] | None = None,
    scopes: Collection[str] | None = None,
) -> dict[str, Path]:
    """Extract the manifest's files from ``archive`` (a path, or a stream read once) into the
    empty directory ``dest``; with ``dest`` None (``verify``) every member is checked and hashed
    as it streams and nothing is written. With ``scopes`` given, only the files of those scopes
    are written (a ``--no-host`` install places no host file); the others are checked and hashed
    all the same, in the same pass.

    Returns member name -> extracted path, for the files written (every file when ``dest`` is
    None). Every listed file must be present exactly once, no larger than the manifest says, and
    hash to the manifest's SHA-256.

    Members the manifest does not list are never written. Outside ``workspace/`` and ``host/``
    (``manifest.json``, metadata a later release may add) they are skipped, except that the
    bytes of a small regular one named in ``extras`` are put there. Inside, they are files
    nobody vouched for, so the archive is refused; with ``unlisted`` given (``verify``, which
    reports every finding) their names are collected there instead.
    """
    # Here, not at the top: a no-op re-install never opens an archive.
    import tarfile
    import zlib

    origin = origin or (archive.name if isinstance(archive, Path) else "archive")
    wanted = manifest.by_member()
    found: dict[str, Path] = {}
    listed: set[str] = set()
    seen: set[str] = set()
    made: set[Path] = set()
    try:
        # gzip's reader inflates in bounded steps; tarfile's own "r|gz" keeps each inflated block
        # in one bytes object that it re-slices per 512-byte read: quadratic in how well the
        # archive compresses (a 4,000-file payload spent 6 s there).
        bounded = _BoundedInflate(archive, inflate_limit(manifest), origin)
        inflated = cast("IO[bytes]", bounded)  # tarfile's stream mode needs only read()
        with bounded, tarfile.open(fileobj=inflated, mode="r|") as tar:
            for count, member in enumerate(tar, start=1):
                if count > MAX_MEMBERS:
                    raise IntegrityError(f"{origin}: more than {MAX_MEMBERS} members; refusing")
                check_member(member, origin)
                name = member.name.rstrip("/")
                if name in seen:
                    raise IntegrityError(f"{origin}: member {name!r} appears twice; refusing")
                seen.add(name)
                entry = wanted.get(name)
                if entry is None and extras is not None and name in extras:
                    extras[name] = _read_extra(tar, member)
                    continue
                if entry is None or member.isdir():
                    in_payload = name.split("/", 1)[0] in SCOPES
                    if entry is None and member.isreg() and in_payload:
                        if unlisted is None:
                            raise IntegrityError(
                                f"{origin}: member {name!r} is not in the manifest; refusing"
                            )
                        unlisted.append(name)
                    continue  # not listed: ignored, never copied
                if member.size != entry.size:
                    raise IntegrityError(
                        f"{origin}: member {name!r} is {member.size} bytes, the manifest says "
                        f"{entry.size}; refusing"
                    )
                stream = tar.extractfile(member)
                if stream is None:  # pragma: no cover - isreg() members always have a stream
                    raise IntegrityError(f"{origin}: member {name!r} has no data")
                write = scopes is None or entry.scope in scopes
                path = _write_member(stream, entry, dest if write else None, origin, made)
                listed.add(name)
                if write or dest is None:
                    found[name] = path
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as exc:
        raise IntegrityError(f"{origin}: not a readable .tar.gz ({exc}); refusing") from exc
    missing = sorted(set(wanted) - listed)
    if missing:
        raise IntegrityError(
            f"{origin}: {len(missing)} file(s) in the manifest are missing from the archive, "
            f"first {missing[0]!r}; refusing"
        )
    return found


def _read_extra(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes | None:
    if not member.isreg() or member.size > MAX_EXTRA_SIZE:
        return None
    stream = tar.extractfile(member)
    return stream.read() if stream is not None else None


def _write_member(
    stream: object, entry: ManifestFile, dest: Path | None, origin: str, made: set[Path]
) -> Path:
    """Hash one member as it streams, writing it below ``dest`` unless that is None; ``made``
    holds the directories already made below ``dest`` (one mkdir each, not one per file)."""
    target = (dest or Path()) / entry.member
    out: BinaryIO | None = None
    if dest is not None:
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            made.update(target.parents)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        out = os.fdopen(os.open(target, flags, 0o600), "wb")
    digest = hashlib.sha256()
    written = 0
    try:
        read = stream.read  # type: ignore[attr-defined]
        while True:
            chunk = read(_COPY_CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > entry.size:
                raise IntegrityError(f"{origin}: member {entry.member!r} is larger than listed")
            digest.update(chunk)
            if out is not None:
                out.write(chunk)
        if digest.hexdigest() != entry.sha256:
            raise IntegrityError(
                f"{origin}: {entry.member!r} has SHA-256 {digest.hexdigest()}, the manifest says "
                f"{entry.sha256}; refusing"
            )
        if out is not None:
            os.fchmod(out.fileno(), entry.mode)  # only once its bytes are the manifest's
    finally:
        if out is not None:
            out.close()
    return target
