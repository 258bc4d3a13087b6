"""Where a payload comes from (``--from``), opened and staged: nothing is trusted before staging.

Every source ends the same way: the archive is copied into the private staging directory, its
size and SHA-256 are checked against a pinned value (the manifest's, or ``--sha256``), and only
then is it unpacked and every file checked (``_staging.stage_archive``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .._errors import IntegrityError, UsageError
from .._hashing import is_sha256_hex
from ._manifest import (
    MAX_TOTAL_SIZE,
    SCOPES,
    ArchiveRef,
    Manifest,
    ManifestFile,
    parse_manifest,
)
from ._staging import (
    ARCHIVE_NAME,
    PAYLOAD_DIR,
    StagedPayload,
    Staging,
    copy_capped,
    stage_archive,
    unpack_staged,
)

INNER_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class SourceSpec:
    """What the user asked for: ``--from`` (None = the payload inside the pyz) and ``--sha256``."""

    location: str | None = None
    sha256: str | None = None
    allow_unpinned: bool = False
    timeout: float | None = None  # --timeout: bounds each download and each git command
    progress: bool | None = None  # False with -q/--json; None: a bar on a terminal

    def describe(self) -> dict[str, Any]:
        return {"from": self.location or "embedded", "sha256": self.sha256}


@dataclass
class Staged:
    """A staged payload, where it came from, and what the receipt records of that."""

    payload: StagedPayload
    origin: str
    record: dict[str, Any] = field(default_factory=dict)


def _from_manifest_file(
    manifest_path: Path,
    staging: Staging,
    origin: str,
    pinned: str | None = None,
    *,
    embedded: bool = False,
    scopes: Collection[str] = SCOPES,
) -> Staged:
    data = manifest_path.read_bytes()  # read once: what is trusted is what is used
    manifest = parse_manifest(data, str(manifest_path))
    if manifest.archive is None:
        raise IntegrityError(f"{manifest_path}: names no archive; it is not a release manifest")
    trust = {"trust": "embedded"} if embedded else _vouch(manifest_path, data, manifest, pinned)
    archive = manifest_path.parent / manifest.archive.name
    try:
        stream = open(archive, "rb")  # noqa: SIM115 - closed below; only open() errors are ours
    except OSError as exc:
        raise IntegrityError(f"{archive}: cannot read the archive ({exc.strerror})") from exc
    with stream:
        payload = stage_archive(stream, manifest, staging, str(archive), scopes=scopes)
    # The hash of the bytes parsed above, not of a second read of a file that may have changed.
    return Staged(payload, origin, {"manifest_sha256": hashlib.sha256(data).hexdigest(), **trust})


def _vouch(
    manifest_path: Path, data: bytes, manifest: Manifest, pinned: str | None
) -> dict[str, str]:
    """The trust rules for a release on disk, with the `SHA256SUMS` and signature beside it."""
    from ._signature import SIGNATURE_NAME
    from ._sums import parse_sums
    from ._trust import ReleaseEvidence, check_sums_agree, establish_trust

    directory = manifest_path.parent
    sums_path, signature_path = directory / "SHA256SUMS", directory / SIGNATURE_NAME
    sums = _read_small(sums_path)
    if sums is not None:
        listed = parse_sums(sums, str(sums_path))
        check_sums_agree(listed, manifest_path.name, data, manifest, str(directory))
    evidence = ReleaseEvidence(str(directory), data, manifest, sums, _read_small(signature_path))
    return establish_trust(evidence, pinned)


def _read_small(path: Path) -> bytes | None:
    from ._release_fetch import MAX_SMALL_FILE

    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_SMALL_FILE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IntegrityError(f"{path}: cannot be read ({exc.strerror})") from exc
    if len(data) > MAX_SMALL_FILE:
        raise IntegrityError(f"{path}: larger than {MAX_SMALL_FILE} bytes; refusing")
    return data


def release_manifests(directory: Path) -> list[Path]:
    """``manifest-<version>.json`` files, not their ``.sigstore.json`` bundles."""
    return sorted(
        p for p in directory.glob("manifest-*.json") if not p.name.endswith(".sigstore.json")
    )


def _release_manifest_in(directory: Path) -> Path:
    candidates = release_manifests(directory)
    if len(candidates) != 1:
        raise UsageError(
            f"{directory}: expected exactly one manifest-<version>.json, found {len(candidates)}"
        )
    return candidates[0]


def _from_archive_pinned(
    archive: Path, sha256: str, staging: Staging, scopes: Collection[str]
) -> Staged:
    """A bare archive pinned by ``--sha256``: verify it whole, then trust the manifest inside."""
    with open(archive, "rb") as stream:
        return _stage_pinned(stream, str(archive), sha256, staging, scopes)


def _stage_pinned(
    stream: BinaryIO, origin: str, sha256: str, staging: Staging, scopes: Collection[str]
) -> Staged:
    copy = staging.path / ARCHIVE_NAME
    actual, size = copy_capped(stream, copy, MAX_TOTAL_SIZE, origin)
    if actual != sha256:
        raise IntegrityError(f"{origin}: SHA-256 {actual} is not the pinned {sha256}; refusing")
    inner = _inner_manifest(copy, origin)
    pinned = Manifest(
        schema=inner.schema,
        name=inner.name,
        version=inner.version,
        files=inner.files,
        archive=ArchiveRef(name=copy.name, sha256=sha256, size=size),
        source=inner.source,
    )
    payload = unpack_staged(copy, actual, size, pinned, staging, origin, scopes=scopes)
    return Staged(payload, origin, {"archive_sha256": sha256, "trust": "pinned"})


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


def _from_url(
    base: str, spec: SourceSpec, staging: Staging, scopes: Collection[str]
) -> Staged:
    from ._release_fetch import fetch_release_payload

    download_dir = staging.path / "download"
    download_dir.mkdir(mode=0o700)
    from ._download import DownloadSettings

    net = DownloadSettings.for_command(spec.timeout, spec.progress)
    manifest, archive, trust = fetch_release_payload(base, download_dir, spec.sha256, net)
    with open(archive, "rb") as stream:
        payload = stage_archive(stream, manifest, staging, str(archive.name), scopes=scopes)
    assert manifest.archive is not None
    return Staged(payload, base, {"archive_sha256": manifest.archive.sha256, **trust})


def _from_stdin(spec: SourceSpec, staging: Staging, scopes: Collection[str]) -> Staged:
    """`--from -`: the archive on standard input, staged to a file and pinned by --sha256."""
    import sys

    if spec.sha256 is None:
        raise UsageError("--from - needs --sha256 HEX: a piped archive must be pinned")
    return _stage_pinned(sys.stdin.buffer, "stdin", spec.sha256, staging, scopes)


def _from_git(spec: SourceSpec, staging: Staging, scopes: Collection[str]) -> Staged:
    """`git+URL@COMMIT`: clone into staging, HEAD must be the pinned commit, then every payload
    file is checked against the manifest committed there before it is copied into staging."""
    from ._git_source import fetch_git, parse_git_source

    assert spec.location is not None
    checkout = fetch_git(
        parse_git_source(spec.location),
        staging.path / "git",
        allow_unpinned=spec.allow_unpinned,
        timeout=spec.timeout,
        tell=spec.progress,  # None: on a terminal; False with -q and --json
    )
    payload_dir = checkout.path / "payload"
    try:
        version = (payload_dir / "VERSION").read_text().strip()
        manifest_path = checkout.path / "manifests" / f"{version}.json"
        manifest = parse_manifest(manifest_path.read_bytes(), f"{spec.location}:{manifest_path}")
    except OSError as exc:
        raise IntegrityError(
            f"{spec.location}: no payload/VERSION and manifests/<version>.json at "
            f"{checkout.commit} ({exc.strerror}); is this the mam-install repository?"
        ) from exc
    root = staging.path / PAYLOAD_DIR
    root.mkdir(mode=0o700)
    for entry in manifest.files:
        _copy_checked(
            payload_dir, checkout.path, entry, root if entry.scope in scopes else None,
            spec.location,
        )
    record = {
        "commit": checkout.commit,
        "ref": checkout.ref,
        "pinned": checkout.pinned,
        "trust": "pinned commit" if checkout.pinned else "unpinned (--allow-unpinned)",
    }
    payload = StagedPayload(manifest=manifest, root=root, scopes=frozenset(scopes))
    return Staged(payload, spec.location, record)


def _copy_checked(
    payload_dir: Path, checkout: Path, entry: ManifestFile, root: Path | None, origin: str
) -> None:
    """Check one file of the checkout against its manifest entry, copying it below ``root``
    unless that is None (a file of a scope this run does not place)."""
    source = payload_dir / entry.member
    real = source.resolve()
    if checkout.resolve() not in real.parents or not real.is_file():
        raise IntegrityError(f"{origin}: {entry.member} is missing or points outside the checkout")
    target = None if root is None else root / entry.member
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(real, "rb") as stream:
        digest, _size = copy_capped(stream, target, entry.size, f"{origin}:{entry.member}")
    if digest != entry.sha256:
        raise IntegrityError(
            f"{origin}: {entry.member} has SHA-256 {digest}, its manifest says {entry.sha256}; "
            "refusing"
        )
    if target is not None:
        os.chmod(target, entry.mode)


def stage_source(
    spec: SourceSpec, staging: Staging, scopes: Collection[str] = SCOPES
) -> Staged:
    """Resolve ``spec``, stage it, and verify every byte; raises IntegrityError on any doubt.

    Only the files of ``scopes`` (those the run will place) are written to staging; every file
    is checked all the same."""
    if spec.sha256 is not None and not is_sha256_hex(spec.sha256):
        raise UsageError(f"--sha256 {spec.sha256!r} is not 64 lowercase hex digits")
    location = spec.location
    if location is None:
        from ._embedded import embedded_manifest_path

        return _from_manifest_file(
            embedded_manifest_path(), staging, "embedded", embedded=True, scopes=scopes
        )
    if location == "-":
        return _from_stdin(spec, staging, scopes)
    if location.startswith("git+"):
        return _from_git(spec, staging, scopes)
    if location.startswith(("https://", "http://")):
        return _from_url(location, spec, staging, scopes)
    path = Path(location).expanduser()
    if path.is_dir():
        manifest = _release_manifest_in(path)
        return _from_manifest_file(manifest, staging, str(path), spec.sha256, scopes=scopes)
    if path.is_file() and path.name.endswith(".json"):
        return _from_manifest_file(path, staging, str(path), spec.sha256, scopes=scopes)
    if path.is_file():
        if spec.sha256 is not None:
            return _from_archive_pinned(path, spec.sha256, staging, scopes)
        sibling = _sibling_manifest(path)
        if sibling is not None and sibling.is_file():
            return _from_manifest_file(sibling, staging, str(path), spec.sha256, scopes=scopes)
        raise UsageError(
            f"{path}: a bare archive needs --sha256 HEX (or its manifest-<version>.json beside it)"
        )
    raise UsageError(f"--from {location}: no such file or directory")
