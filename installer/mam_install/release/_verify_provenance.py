"""`verify`'s provenance checks: what a release was built from, where its bootstrap downloads
from, and whether the release key signed its `SHA256SUMS`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ._signature import SIGNATURE_NAME

if TYPE_CHECKING:
    from ._manifest import Manifest
    from ._verify_release import VerifyReport

__all__ = ["check_bootstrap", "check_release_key_signature", "check_source"]


def check_source(manifest: Manifest, subject: str, report: VerifyReport) -> None:
    """A release is built from a commit: a dirty tree's build cannot be rebuilt by anyone."""
    source = manifest.source
    if source is None:
        report.add(
            "source", subject, False, "names no source commit; build it with scripts/build.py"
        )
        return
    dirty = "+dirty" in source.ref
    if dirty and not report.allow_dirty:
        report.add(
            "source",
            subject,
            False,
            f"built from a dirty tree (ref {source.ref!r}): rebuild from a clean checkout of "
            f"{source.commit}, or pass --allow-dirty for a local test build",
        )
        return
    note = " (dirty, allowed by --allow-dirty)" if dirty else ""
    report.add("source", subject, True, f"built from {source.ref} at {source.commit}{note}")


# Hosts that can never be a real release URL (RFC 2606 names and the template's own marks).
_PLACEHOLDER_HOSTS = (".invalid", ".example", ".test", ".localhost")
_PLACEHOLDER_MARKS = ("<", ">", "@MAM_", "{version}")


def check_bootstrap(release: Path, sums: dict[str, str], report: VerifyReport) -> None:
    import re
    from urllib.parse import urlsplit

    bootstrap = release / "get-mam.py"
    if "get-mam.py" not in sums or "mam-install.pyz" not in sums:
        return
    text = bootstrap.read_text(errors="replace")
    pinned = sums["mam-install.pyz"] in text
    report.add(
        "bootstrap",
        bootstrap.name,
        pinned,
        "pins the released pyz's sha256" if pinned else "does not pin the released pyz",
    )
    found = re.search(r'^DEFAULT_BASE_URL = "([^"\n]*)"$', text, re.MULTILINE)
    url = found.group(1) if found else ""
    host = (urlsplit(url).hostname or "").lower()
    placeholder = (
        not url
        or host.endswith(_PLACEHOLDER_HOSTS)
        or host in ("localhost", "example.com", "example.org", "example.net")
        or any(mark in url for mark in _PLACEHOLDER_MARKS)
    )
    report.add(
        "bootstrap",
        f"{bootstrap.name}:DEFAULT_BASE_URL",
        not placeholder,
        f"downloads from {url}"
        if not placeholder
        else f"downloads from the placeholder {url or '(none)'!r}: build the release with "
        "--base-url https://<where it is published>",
    )


def check_release_key_signature(sums_path: Path, report: VerifyReport) -> None:
    """`SHA256SUMS.ed25519`, when published, must verify against the key built into this
    installer: the check every install of the release will make."""
    from ._embedded import release_public_keys
    from ._signature import verify_sums_signature

    signature = sums_path.with_name(SIGNATURE_NAME)
    if not signature.is_file():
        return
    key = report.guard(
        "ed25519",
        SIGNATURE_NAME,
        verify_sums_signature,
        sums_path.read_bytes(),
        signature.read_bytes(),
        release_public_keys(),
        SIGNATURE_NAME,
    )
    if key is not None:
        report.add("ed25519", SIGNATURE_NAME, True, f"SHA256SUMS signed by release key {key}")
