"""Where a payload comes from (``--from``), opened and staged: nothing is trusted before staging.

Every source ends the same way: the archive is copied into the private staging directory, its
size and SHA-256 are checked against a pinned value (the manifest's, or ``--sha256``), and only
then is it unpacked and every file checked (``_staging.stage_archive``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import IntegrityError, UsageError
from ._hashing import is_sha256_hex, sha256_file
from ._manifest import MAX_TOTAL_SIZE, ArchiveRef, Manifest, parse_manifest
from ._staging import StagedPayload, Staging, copy_capped, stage_archive

INNER_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class SourceSpec:
    """What the user asked for: ``--from`` (None = the payload inside the pyz) and ``--sha256``."""

    location: str | None = None
    sha256: str | None = None
    allow_unpinned: bool = False

    def describe(self) -> dict[str, Any]:
        return {"from": self.location or "embedded", "sha256": self.sha256}


@dataclass
class Staged:
    payload: StagedPayload
    origin: str
    record: dict[str, Any] = field(default_factory=dict)


def _from_manifest_file(manifest_path: Path, staging: Staging, origin: str) -> Staged:
    manifest = parse_manifest(manifest_path.read_bytes(), str(manifest_path))
    if manifest.archive is None:
        raise IntegrityError(f"{manifest_path}: names no archive; it is not a release manifest")
    archive = manifest_path.parent / manifest.archive.name
    try:
        stream = open(archive, "rb")  # noqa: SIM115 - closed below; only open() errors are ours
    except OSError as exc:
        raise IntegrityError(f"{archive}: cannot read the archive ({exc.strerror})") from exc
    with stream:
        payload = stage_archive(stream, manifest, staging, str(archive))
    return Staged(payload, origin, {"manifest_sha256": sha256_file(manifest_path)})


def _release_manifest_in(directory: Path) -> Path:
    candidates = sorted(directory.glob("manifest-*.json"))
    if len(candidates) != 1:
        raise UsageError(
            f"{directory}: expected exactly one manifest-<version>.json, found {len(candidates)}"
        )
    return candidates[0]


def _from_archive_pinned(archive: Path, sha256: str, staging: Staging) -> Staged:
    """A bare archive pinned by ``--sha256``: verify it whole, then trust the manifest inside."""
    copy = staging.path / "pinned-archive.tar.gz"
    with open(archive, "rb") as stream:
        actual, size = copy_capped(stream, copy, MAX_TOTAL_SIZE, str(archive))
    if actual != sha256:
        raise IntegrityError(f"{archive}: SHA-256 {actual} is not the pinned {sha256}; refusing")
    manifest = _inner_manifest(copy, str(archive))
    pinned = Manifest(
        schema=manifest.schema,
        name=manifest.name,
        version=manifest.version,
        files=manifest.files,
        archive=ArchiveRef(name=archive.name, sha256=sha256, size=size),
        source=manifest.source,
    )
    with open(copy, "rb") as stream:
        payload = stage_archive(stream, pinned, staging, str(archive))
    return Staged(payload, str(archive), {"archive_sha256": sha256})


def _inner_manifest(archive: Path, origin: str) -> Manifest:
    import tarfile

    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.getmember(INNER_MANIFEST)
            if not member.isreg() or member.size > 1 << 20:
                raise IntegrityError(f"{origin}: {INNER_MANIFEST} is not a small regular file")
            stream = tar.extractfile(member)
            data = stream.read() if stream is not None else b""
    except KeyError:
        raise IntegrityError(f"{origin}: holds no {INNER_MANIFEST}; pass its manifest") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise IntegrityError(f"{origin}: not a readable .tar.gz ({exc})") from exc
    return parse_manifest(data, f"{origin}:{INNER_MANIFEST}")


def _sibling_manifest(archive: Path) -> Path | None:
    """``mam-payload-V.tar.gz`` -> ``manifest-V.json`` in the same directory."""
    name = archive.name
    if not (name.startswith("mam-payload-") and name.endswith(".tar.gz")):
        return None
    return archive.with_name("manifest-" + name[len("mam-payload-") : -len(".tar.gz")] + ".json")


def stage_source(spec: SourceSpec, staging: Staging) -> Staged:
    """Resolve ``spec``, stage it, and verify every byte; raises IntegrityError on any doubt."""
    if spec.sha256 is not None and not is_sha256_hex(spec.sha256):
        raise UsageError(f"--sha256 {spec.sha256!r} is not 64 lowercase hex digits")
    location = spec.location
    if location is None:
        from ._embedded import embedded_manifest_path

        return _from_manifest_file(embedded_manifest_path(), staging, "embedded")
    path = Path(location).expanduser()
    if path.is_dir():
        return _from_manifest_file(_release_manifest_in(path), staging, str(path))
    if path.is_file() and path.name.endswith(".json"):
        return _from_manifest_file(path, staging, str(path))
    if path.is_file():
        if spec.sha256 is not None:
            return _from_archive_pinned(path, spec.sha256, staging)
        sibling = _sibling_manifest(path)
        if sibling is not None and sibling.is_file():
            return _from_manifest_file(sibling, staging, str(path))
        raise UsageError(
            f"{path}: a bare archive needs --sha256 HEX (or its manifest-<version>.json beside it)"
        )
    raise UsageError(f"--from {location}: no such file or directory")
