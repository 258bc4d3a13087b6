"""Fetching a release over HTTPS: SHA256SUMS first, then each artifact checked against it.

Nothing fetched is used before its hash matches: the manifest against SHA256SUMS, the archive
against SHA256SUMS *and* the manifest (and ``--sha256`` when given). Archives go through the
content-addressed cache, re-verified on every use, so a second install does not download again.
"""

from __future__ import annotations

from pathlib import Path

from ._errors import IntegrityError
from ._manifest import MAX_TOTAL_SIZE, Manifest, parse_manifest

MAX_SMALL_FILE = 1 << 20  # SHA256SUMS, manifests, bundles


def is_url(location: str) -> bool:
    return location.startswith(("https://", "http://"))


def artifact_url(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def fetch_sums(base: str, dest: Path) -> dict[str, str]:
    from ._download import download
    from ._sums import parse_sums

    path = dest / "SHA256SUMS"
    download(artifact_url(base, "SHA256SUMS"), path, max_bytes=MAX_SMALL_FILE)
    return parse_sums(path.read_bytes(), artifact_url(base, "SHA256SUMS"))


def fetch_listed(base: str, name: str, sums: dict[str, str], dest: Path, max_bytes: int) -> Path:
    """Download an artifact SHA256SUMS lists, refusing it unless its hash matches."""
    from ._download import download

    if name not in sums:
        raise IntegrityError(f"{artifact_url(base, 'SHA256SUMS')} does not list {name}; refusing")
    path = dest / name
    download(artifact_url(base, name), path, max_bytes=max_bytes, expected_sha256=sums[name])
    return path


def release_manifest_name(sums: dict[str, str], origin: str) -> str:
    names = sorted(n for n in sums if n.startswith("manifest-") and n.endswith(".json"))
    if len(names) != 1:
        raise IntegrityError(f"{origin}: lists {len(names)} manifest-<version>.json files, not 1")
    return names[0]


def fetch_release_payload(
    base: str, dest: Path, pinned_archive_sha256: str | None = None
) -> tuple[Manifest, Path]:
    """Download and check the manifest and payload archive of the release at ``base``."""
    from ._cache import default_cache_root, restore, store

    sums = fetch_sums(base, dest)
    origin = artifact_url(base, "SHA256SUMS")
    manifest_path = fetch_listed(
        base, release_manifest_name(sums, origin), sums, dest, MAX_SMALL_FILE
    )
    manifest = parse_manifest(manifest_path.read_bytes(), str(manifest_path.name))
    ref = manifest.archive
    if ref is None or ref.name not in sums or sums[ref.name] != ref.sha256:
        raise IntegrityError(
            f"{base}: the manifest's archive and SHA256SUMS disagree; refusing this release"
        )
    if pinned_archive_sha256 is not None and pinned_archive_sha256 != ref.sha256:
        raise IntegrityError(
            f"{artifact_url(base, ref.name)} is {ref.sha256}, not the pinned "
            f"{pinned_archive_sha256}; refusing"
        )
    archive = dest / ref.name
    cache = default_cache_root()
    if not restore(cache, ref.sha256, archive):
        fetch_listed(base, ref.name, sums, dest, min(ref.size, MAX_TOTAL_SIZE))
        try:
            store(cache, archive, ref.sha256)
        except OSError:
            pass  # an unwritable cache only costs the next install a download
    return manifest, archive
