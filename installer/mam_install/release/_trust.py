"""Why a release from a URL or a directory may be installed at all (DESIGN §4 "Trust").

A release that is consistent with itself proves nothing: a hostile mirror can regenerate the
manifest and `SHA256SUMS` around a backdoored file. So something the user or this installer
already trusts must vouch for it, checked before anything leaves staging:

1. the user pinned it: ``--sha256`` equals the SHA-256 of its archive, manifest or `SHA256SUMS`;
2. its manifest is byte-identical to the release manifest embedded in this pyz, or has exactly
   the files of the released manifest of that version embedded in it (``manifests/V.json``:
   every installed byte is then one the project released);
3. `SHA256SUMS.ed25519` verifies against the release key built into this pyz.

Otherwise the release is refused with exit 5, naming these three ways forward.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .._errors import IntegrityError
from ._manifest import Manifest, parse_manifest

__all__ = ["ReleaseEvidence", "check_sums_agree", "establish_trust"]


@dataclass(frozen=True)
class ReleaseEvidence:
    """What a release offers to be trusted by; ``sums`` already agrees with the manifest and the
    archive (the caller checked), ``signature`` is the raw `SHA256SUMS.ed25519`."""

    origin: str
    manifest_bytes: bytes
    manifest: Manifest
    sums: bytes | None = None
    signature: bytes | None = None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_sums_agree(
    sums: dict[str, str], manifest_name: str, manifest_bytes: bytes, manifest: Manifest, origin: str
) -> None:
    """`SHA256SUMS` must list the manifest and its archive with the hashes they have: a signature
    or a pin on `SHA256SUMS` vouches for the release only through these two lines."""
    archive = manifest.archive
    if sums.get(manifest_name) != _sha256(manifest_bytes):
        raise IntegrityError(
            f"{origin}: SHA256SUMS does not list {manifest_name} as it is; refusing"
        )
    if archive is None or sums.get(archive.name) != archive.sha256:
        raise IntegrityError(
            f"{origin}: the manifest's archive and SHA256SUMS disagree; refusing this release"
        )


def _pinned(evidence: ReleaseEvidence, pin: str) -> dict[str, str]:
    archive = evidence.manifest.archive
    if archive is not None and pin == archive.sha256:
        return {"trust": "pinned", "pin": "archive"}
    if pin == _sha256(evidence.manifest_bytes):
        return {"trust": "pinned", "pin": "manifest"}
    if evidence.sums is not None and pin == _sha256(evidence.sums):
        return {"trust": "pinned", "pin": "SHA256SUMS"}
    raise IntegrityError(
        f"{evidence.origin}: --sha256 {pin} is neither its archive's, its manifest's nor its "
        "SHA256SUMS's SHA-256; refusing: this is not the release you pinned"
    )


def _embedded(evidence: ReleaseEvidence) -> dict[str, str] | None:
    from .._errors import PlatformError
    from ._embedded import embedded_manifest_path, released_manifest

    try:
        if evidence.manifest_bytes == embedded_manifest_path().read_bytes():
            return {"trust": "embedded", "embedded": "release manifest"}
    except (PlatformError, OSError):
        pass
    manifest = evidence.manifest
    release = released_manifest(f"manifest-{manifest.version}.json")
    if release is not None and release.read_bytes() == evidence.manifest_bytes:
        return {"trust": "embedded", "embedded": f"manifests/{release.name}"}
    released = released_manifest(f"{manifest.version}.json")
    if released is None:
        return None
    known = parse_manifest(released.read_bytes(), str(released))
    if (known.name, known.version, known.files) == (
        manifest.name,
        manifest.version,
        manifest.files,
    ):
        return {"trust": "embedded", "embedded": f"manifests/{manifest.version}.json"}
    return None


def establish_trust(evidence: ReleaseEvidence, pin: str | None) -> dict[str, str]:
    """Return how the release is vouched for (recorded in the receipt), or raise exit 5."""
    if pin is not None:
        return _pinned(evidence, pin)
    embedded = _embedded(evidence)
    if embedded is not None:
        return embedded
    if evidence.signature is not None and evidence.sums is not None:
        from ._embedded import release_public_keys
        from ._signature import SIGNATURE_NAME, verify_sums_signature

        key = verify_sums_signature(
            evidence.sums,
            evidence.signature,
            release_public_keys(),
            f"{evidence.origin}: {SIGNATURE_NAME}",
        )
        return {"trust": "signed", "key": key}
    version = evidence.manifest.version
    raise IntegrityError(
        f"{evidence.origin}: nothing vouches for this release of mam {version}: its manifest is "
        "not one this installer ships, no --sha256 pins it and its SHA256SUMS carries no "
        "signature by the release key built into this installer (a mirror can regenerate every "
        "checksum). Ways forward: pin it with --sha256 HEX (the SHA-256 of its archive, manifest "
        "or SHA256SUMS, from a source you trust); or install with the mam-install.pyz of that "
        f"release, which embeds its manifest; or use a signed release (SHA256SUMS.ed25519)"
    )
