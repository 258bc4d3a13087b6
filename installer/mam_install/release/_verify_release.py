"""`verify`: prove a release directory (or URL) is exactly what was built and signed.

Every check adds one finding; the release passes only when every finding does. Checked:
SHA256SUMS (strict), every artifact it lists, nothing unlisted, the manifest, that it was built
from a clean tree (``ref`` without ``+dirty``, unless --allow-dirty), the archive's size and hash,
every archive member and extracted file, the archive's own manifest, the pyz's embedded payload
and manifest, get-mam.py's pinned pyz hash and a real (not placeholder) release URL, and, with
--identity/--issuer, a sigstore bundle for every artifact ("N of M signed": any gap fails).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import MamError, NetworkError, UsageError
from .._hashing import sha256_file, sha256_stream
from ._manifest import Manifest, parse_manifest
from ._signature import SIGNATURE_NAME
from ._sources import release_manifests
from ._staging import Staging, verify_archive
from ._verify_provenance import check_bootstrap, check_release_key_signature, check_source

BUNDLE_SUFFIX = ".sigstore.json"
EMBEDDED_DATA = "site-packages/mam_install/_data/"


@dataclass(frozen=True)
class Finding:
    check: str
    subject: str
    ok: bool
    detail: str

    def line(self) -> str:
        """``ok  CHECK SUBJECT: DETAIL``; a failure is printed as an ``error:`` line."""
        return f"{'ok  ' if self.ok else ''}{self.check:10} {self.subject}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "subject": self.subject, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class SignaturePolicy:
    identity: str | None = None
    issuer: str | None = None
    trusted_root: Path | None = None
    required: bool = False
    allow_dirty: bool = False

    @property
    def signatures_required(self) -> bool:
        """An identity to check against means every artifact must carry a signature by it."""
        return self.required or (self.identity is not None and self.issuer is not None)

    @classmethod
    def from_file(
        cls, path: Path, required: bool, trusted_root: Path | None, allow_dirty: bool = False
    ) -> SignaturePolicy:
        try:
            doc = json.loads(path.read_text())
            return cls(
                str(doc["identity"]), str(doc["issuer"]), trusted_root, required, allow_dirty
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"{path}: not a policy file of the form "
                '{"identity": "...", "issuer": "..."} (' + str(exc) + ")"
            ) from exc


@dataclass
class VerifyReport:
    location: str
    findings: list[Finding] = field(default_factory=list)
    allow_dirty: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.findings) and all(f.ok for f in self.findings)

    def add(self, check: str, subject: str, ok: bool, detail: str) -> bool:
        self.findings.append(Finding(check, subject, ok, detail))
        return ok

    def guard(self, check: str, subject: str, func: Any, *args: Any) -> Any:
        """Run one check; an IntegrityError becomes a failed finding instead of an abort."""
        try:
            return func(*args)
        except MamError as exc:
            self.add(check, subject, False, str(exc))
            return None

    def to_json(self) -> dict[str, Any]:
        checks: dict[str, bool] = {}
        for finding in self.findings:
            checks[finding.check] = checks.get(finding.check, True) and finding.ok
        return {
            "location": self.location,
            "verified": self.ok,
            "checks": checks,
            "findings": [f.to_json() for f in self.findings],
        }


def _check_sums(release: Path, sums_path: Path, report: VerifyReport) -> dict[str, str] | None:
    from ._sums import parse_sums

    if not sums_path.is_file():
        report.add("sums", str(sums_path), False, "missing; every release has a SHA256SUMS")
        return None
    sums: dict[str, str] | None = report.guard(
        "sums", sums_path.name, parse_sums, sums_path.read_bytes(), str(sums_path)
    )
    if sums is None:
        return None
    report.add("sums", sums_path.name, True, f"{len(sums)} well-formed lines")
    for name, expected in sorted(sums.items()):
        path = release / name
        if not path.is_file():
            report.add("artifact", name, False, "listed in SHA256SUMS but missing")
            continue
        actual = sha256_file(path)
        report.add(
            "artifact",
            name,
            actual == expected,
            "sha256 matches" if actual == expected else f"sha256 {actual} != {expected}",
        )
    for path in sorted(release.iterdir()):
        if path.name in (sums_path.name, SIGNATURE_NAME) or path.name in sums:
            continue
        if path.name.endswith(BUNDLE_SUFFIX):
            continue
        report.add("artifact", path.name, False, "present but not listed in SHA256SUMS")
    return sums


def _check_payload(release: Path, report: VerifyReport) -> tuple[Manifest, Path] | None:
    manifests = release_manifests(release)
    if len(manifests) != 1:
        report.add("manifest", str(release), False, f"{len(manifests)} manifest-*.json, not 1")
        return None
    path = manifests[0]
    manifest = report.guard("manifest", path.name, parse_manifest, path.read_bytes(), path.name)
    if manifest is None:
        return None
    if manifest.archive is None:
        report.add("manifest", path.name, False, "names no archive")
        return None
    report.add("manifest", path.name, True, f"mam {manifest.version}, {len(manifest.files)} files")
    check_source(manifest, path.name, report)
    archive = release / manifest.archive.name
    unlisted: list[str] = []
    extras: dict[str, bytes | None] = {"manifest.json": None}
    try:
        with open(archive, "rb") as stream:
            verify_archive(stream, manifest, archive.name, unlisted, extras)
    except (MamError, OSError) as exc:
        report.add("archive", archive.name, False, str(exc))
        return None
    for name in unlisted:
        # The installer skips such a member; a release that carries one was not built by us.
        report.add("archive", f"{archive.name}:{name}", False, "member not in the manifest")
    report.add(
        "archive",
        archive.name,
        True,
        f"size, sha256, every member and all {len(manifest.files)} file hashes match",
    )
    inner = _inner_manifest(extras["manifest.json"])
    content = {k: v for k, v in manifest.to_json().items() if k not in ("archive", "source")}
    report.add(
        "archive",
        f"{archive.name}:manifest.json",
        inner == content,
        "matches the release manifest" if inner == content else "differs from the manifest",
    )
    return manifest, path


def _inner_manifest(data: bytes | None) -> Any:
    try:
        return json.loads(data) if data is not None else None
    except ValueError:
        return None


def _check_pyz(
    release: Path, manifest: Manifest, manifest_path: Path, report: VerifyReport
) -> None:
    pyz = release / "mam-install.pyz"
    if not pyz.is_file():
        report.add("pyz", pyz.name, False, "missing from the release")
        return
    assert manifest.archive is not None
    try:
        with zipfile.ZipFile(pyz) as zf:
            with zf.open(EMBEDDED_DATA + "manifest.json") as stream:
                embedded_manifest = sha256_stream(stream)  # type: ignore[arg-type]
            with zf.open(EMBEDDED_DATA + manifest.archive.name) as stream:
                embedded_archive = sha256_stream(stream)  # type: ignore[arg-type]
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        report.add("pyz", pyz.name, False, f"no embedded payload ({exc})")
        return
    report.add(
        "pyz",
        f"{pyz.name}:manifest.json",
        embedded_manifest == sha256_file(manifest_path),
        "embedded manifest equals the release's",
    )
    # Both sides hashed as streams: a large payload costs no memory (DESIGN §9).
    same = embedded_archive == manifest.archive.sha256
    report.add(
        "pyz",
        f"{pyz.name}:{manifest.archive.name}",
        same,
        "embedded payload equals the release's" if same else "embedded payload differs",
    )


def _check_signatures(
    release: Path, sums: dict[str, str], policy: SignaturePolicy, report: VerifyReport
) -> None:
    from ._sigstore_verify import INSTALL_HINT, sigstore_available

    artifacts = sorted([*sums, "SHA256SUMS"])
    bundles = {n: release / f"{n}{BUNDLE_SUFFIX}" for n in artifacts}
    present = {n: b for n, b in bundles.items() if b.is_file()}
    if not policy.signatures_required:
        if present:
            report.add(
                "signature",
                release.name,
                True,
                f"{len(present)} bundle(s) not checked: pass --identity and --issuer",
            )
        return
    if not policy.identity or not policy.issuer:
        report.add(
            "signature",
            release.name,
            False,
            "--require-signature needs --identity and --issuer (or --policy FILE)",
        )
        return
    if not sigstore_available():
        report.add(
            "signature",
            release.name,
            False,
            f"sigstore is not installed, signatures cannot be checked: {INSTALL_HINT}",
        )
        return
    signed = 0
    for name in artifacts:
        if name not in present:
            report.add("signature", name, False, f"no {name}{BUNDLE_SUFFIX}: it is not signed")
            continue
        if _verify_one(release / name, present[name], policy, report):
            signed += 1
            report.add("signature", name, True, f"signed by {policy.identity} ({policy.issuer})")
    report.add(
        "signature",
        release.name,
        signed == len(artifacts),
        f"{signed} of {len(artifacts)} artifacts signed by {policy.identity}",
    )


def _verify_one(
    artifact: Path, bundle: Path, policy: SignaturePolicy, report: VerifyReport
) -> bool:
    from ._sigstore_verify import verify_bundle

    assert policy.identity is not None and policy.issuer is not None
    try:
        verify_bundle(
            artifact,
            bundle,
            identity=policy.identity,
            issuer=policy.issuer,
            trusted_root=policy.trusted_root,
        )
    except MamError as exc:
        report.add("signature", artifact.name, False, str(exc))
        return False
    return True


def verify_directory(
    release: Path, sums_path: Path | None, policy: SignaturePolicy
) -> VerifyReport:
    report = VerifyReport(str(release), allow_dirty=policy.allow_dirty)
    if not release.is_dir():
        raise UsageError(f"{release} is not a release directory (or an https:// URL)")
    sums = _check_sums(release, sums_path or release / "SHA256SUMS", report)
    checked = _check_payload(release, report)
    if checked is not None:
        _check_pyz(release, checked[0], checked[1], report)
    if sums is not None:
        check_bootstrap(release, sums, report)
        check_release_key_signature(sums_path or release / "SHA256SUMS", report)
        _check_signatures(release, sums, policy, report)
    return report


def verify_release(
    location: str, sums_path: Path | None, policy: SignaturePolicy, net: Any = None
) -> VerifyReport:
    """Verify a local release directory, or download the release at an URL and verify that;
    ``net`` is the `DownloadSettings` of --timeout, -q and --json."""
    from dataclasses import replace

    from ._download import DownloadSettings, download
    from ._release_fetch import MAX_SMALL_FILE, artifact_url, fetch_sums, is_url

    if not is_url(location):
        return verify_directory(Path(location).expanduser(), sums_path, policy)
    settings: DownloadSettings = net if net is not None else DownloadSettings()
    with Staging(prefix="mam-verify-") as staging:
        release = staging.path / "release"
        release.mkdir()
        sums = fetch_sums(location, release, settings)
        for name in sorted(sums):
            url = artifact_url(location, name)
            download(url, release / name, max_bytes=256 << 20, settings=settings)
        once = replace(settings, retries=0)
        optional = [f"{n}{BUNDLE_SUFFIX}" for n in [*sorted(sums), "SHA256SUMS"]]
        for name in [SIGNATURE_NAME, *optional]:
            try:
                url = artifact_url(location, name)
                download(url, release / name, max_bytes=MAX_SMALL_FILE, settings=once)
            except NetworkError as exc:
                if exc.status not in (404, 410):
                    raise
                # Not published: the signature checks say what that means.
        report = verify_directory(release, sums_path, policy)
        report.location = location
        return report
