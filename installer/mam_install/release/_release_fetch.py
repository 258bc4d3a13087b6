"""Fetching a release over HTTPS: SHA256SUMS first, then each artifact checked against it.

Nothing fetched is used before its hash matches: the manifest against SHA256SUMS, the archive
against SHA256SUMS *and* the manifest (and ``--sha256`` when given). Archives go through the
content-addressed cache, re-verified on every use, so a second install does not download again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import IntegrityError, NetworkError
from ._manifest import MAX_TOTAL_SIZE, Manifest, parse_manifest

if TYPE_CHECKING:
    from ._download import DownloadSettings

MAX_SMALL_FILE = 1 << 20  # SHA256SUMS, manifests, bundles


def is_url(location: str) -> bool:
    return location.startswith(("https://", "http://"))


def artifact_url(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def _settings(net: DownloadSettings | None) -> DownloadSettings:
    from ._download import DownloadSettings

    return net if net is not None else DownloadSettings()


def fetch_sums(base: str, dest: Path, net: DownloadSettings | None = None) -> dict[str, str]:
    from ._sums import parse_sums

    return parse_sums(fetch_sums_bytes(base, dest, net), artifact_url(base, "SHA256SUMS"))


def fetch_sums_bytes(base: str, dest: Path, net: DownloadSettings | None = None) -> bytes:
    from ._download import download

    path = dest / "SHA256SUMS"
    url = artifact_url(base, "SHA256SUMS")
    download(url, path, max_bytes=MAX_SMALL_FILE, settings=_settings(net))
    return path.read_bytes()


def fetch_optional(
    base: str, name: str, dest: Path, net: DownloadSettings | None = None
) -> bytes | None:
    """A small artifact a release may lack (its signature): None on 404 or 410."""
    from ._download import download

    path = dest / name
    try:
        download(artifact_url(base, name), path, max_bytes=MAX_SMALL_FILE, settings=_settings(net))
    except NetworkError as exc:
        if exc.status in (404, 410):
            return None
        raise
    return path.read_bytes()


def fetch_listed(
    base: str,
    name: str,
    sums: dict[str, str],
    dest: Path,
    max_bytes: int,
    net: DownloadSettings | None = None,
) -> Path:
    """Download an artifact SHA256SUMS lists, refusing it unless its hash matches."""
    from ._download import download

    if name not in sums:
        raise IntegrityError(f"{artifact_url(base, 'SHA256SUMS')} does not list {name}; refusing")
    path = dest / name
    url = artifact_url(base, name)
    download(url, path, max_bytes=max_bytes, expected_sha256=sums[name], settings=_settings(net))
    return path


def release_manifest_name(sums: dict[str, str], origin: str) -> str:
    names = sorted(n for n in sums if n.startswith("manifest-") and n.endswith(".json"))
    if len(names) != 1:
        raise IntegrityError(f"{origin}: lists {len(names)} manifest-<version>.json files, not 1")
    return names[0]


def fetch_release_payload(
    base: str, dest: Path, pin: str | None = None, net: DownloadSettings | None = None
) -> tuple[Manifest, Path, dict[str, str]]:
    """Download and check the manifest and payload archive of the release at ``base``; the
    trust rules (`_trust`) are applied before the archive is downloaded."""
    from ._cache import default_cache_root, restore, store
    from ._signature import SIGNATURE_NAME
    from ._sums import parse_sums
    from ._trust import ReleaseEvidence, check_sums_agree, establish_trust

    sums_bytes = fetch_sums_bytes(base, dest, net)
    origin = artifact_url(base, "SHA256SUMS")
    sums = parse_sums(sums_bytes, origin)
    manifest_name = release_manifest_name(sums, origin)
    manifest_path = fetch_listed(base, manifest_name, sums, dest, MAX_SMALL_FILE, net)
    manifest_bytes = manifest_path.read_bytes()
    manifest = parse_manifest(manifest_bytes, str(manifest_path.name))
    check_sums_agree(sums, manifest_name, manifest_bytes, manifest, base)
    signature = None if pin is not None else fetch_optional(base, SIGNATURE_NAME, dest, net)
    evidence = ReleaseEvidence(base, manifest_bytes, manifest, sums_bytes, signature)
    trust = establish_trust(evidence, pin)
    ref = manifest.archive
    assert ref is not None  # check_sums_agree refused a manifest without one
    archive = dest / ref.name
    cache = default_cache_root()
    if not restore(cache, ref.sha256, archive):
        fetch_listed(base, ref.name, sums, dest, min(ref.size, MAX_TOTAL_SIZE), net)
        try:
            store(cache, archive, ref.sha256)
        except OSError:
            pass  # an unwritable cache only costs the next install a download
    return manifest, archive, trust
