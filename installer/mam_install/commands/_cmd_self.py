"""`self update` and `self uninstall`: the installer replacing or removing its own copy on PATH.

`self update` installs the release's ``mam-install.pyz`` only when something already trusted
vouches for that file: ``--sha256`` of the pyz or of ``SHA256SUMS``, or the release key's
signature on ``SHA256SUMS``. An embedded manifest (or a pin of the manifest) does not: it vouches
for the payload, and says nothing about the pyz beside it. It refuses a downgrade, runs the new
pyz once (``--version``) before it replaces the old one, and replaces it atomically.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from .._errors import ConflictError, IntegrityError, UsageError
from .._feedback import ConsoleFeedback
from ..scopes._self_pyz import installed_path, pyz_version

__all__ = ["SelfUpdateOptions", "run_self_uninstall", "run_self_update"]

PYZ_NAME = "mam-install.pyz"
MAX_PYZ = 64 << 20
UPDATE_URL_FILE = "update-url"
_PLACEHOLDER_HOSTS = (".invalid", ".example", ".test")


@dataclass(frozen=True)
class SelfUpdateOptions:
    location: str | None = None  # --from; else MAM_RELEASE_URL; else the URL built in
    sha256: str | None = None
    timeout: float | None = None
    progress: bool | None = None
    allow_downgrade: bool = False


def update_url(location: str | None) -> str:
    """Where the newest release is: --from, MAM_RELEASE_URL, or the URL built into the pyz."""
    from urllib.parse import urlsplit

    from .._errors import PlatformError
    from ..release._embedded import data_dir

    url = location or os.environ.get("MAM_RELEASE_URL", "")
    if not url:
        try:
            url = (data_dir() / UPDATE_URL_FILE).read_text().strip()
        except (OSError, PlatformError):
            url = ""
    host = urlsplit(url).hostname or ""
    if not url or host.endswith(_PLACEHOLDER_HOSTS):
        raise UsageError(
            f"this mam-install knows no release URL ({url or 'none built in'}); pass --from "
            "https://<release directory> or set MAM_RELEASE_URL"
        )
    return url


def _vouch(sums: bytes, listed: dict[str, str], signature: bytes | None, pin: str | None) -> str:
    import hashlib

    from ..release._embedded import release_public_keys
    from ..release._signature import SIGNATURE_NAME, verify_sums_signature

    if pin is not None:
        if pin == listed[PYZ_NAME]:
            return "pinned (pyz)"
        if pin == hashlib.sha256(sums).hexdigest():
            return "pinned (SHA256SUMS)"
        raise IntegrityError(
            f"--sha256 {pin} is neither the release's {PYZ_NAME} nor its SHA256SUMS; refusing"
        )
    if signature is None:
        raise IntegrityError(
            f"nothing vouches for this {PYZ_NAME}: no --sha256 pins it and its SHA256SUMS "
            f"carries no {SIGNATURE_NAME}; pin it with --sha256 HEX (the SHA-256 of the pyz or "
            "of SHA256SUMS, from a source you trust) or update from a signed release"
        )
    key = verify_sums_signature(sums, signature, release_public_keys(), SIGNATURE_NAME)
    return f"signed (key {key})"


def _check_version(new: str, allow_downgrade: bool) -> None:
    from packaging.version import InvalidVersion, Version

    try:
        older = Version(new) < Version(__version__)
    except InvalidVersion as exc:
        raise IntegrityError(f"cannot compare versions {__version__!r} and {new!r}") from exc
    if older and not allow_downgrade:
        raise IntegrityError(
            f"refusing to downgrade mam-install from {__version__} to {new} (a rollback attack "
            "looks the same); pass --allow-downgrade if you mean it"
        )


def _smoke_test(pyz: Path, version: str) -> None:
    """Run the new pyz once, as the user will, before it replaces anything."""
    try:
        done = subprocess.run(
            [sys.executable, str(pyz), "--version"],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise IntegrityError(f"the downloaded {PYZ_NAME} {version} did not run ({exc})") from exc
    if done.returncode != 0 or not done.stdout.startswith(f"mam-install {version} "):
        raise IntegrityError(
            f"the downloaded {PYZ_NAME} {version} does not run here: "
            f"{(done.stderr or done.stdout).strip()[-200:]}; the installed one was kept"
        )


def _check_ours(dest: Path) -> None:
    if dest.is_symlink() or (dest.exists() and not dest.is_file()):
        raise ConflictError(f"{dest} is a symlink or not a file; it is not ours: move it away")
    if dest.exists() and pyz_version(dest) is None:
        raise ConflictError(f"{dest} is not a mam-install pyz; it was left alone: move it away")


def _place(new: Path, dest: Path) -> None:
    """Copy ``new`` beside ``dest`` and rename it over: the old one stays until the last step."""
    _check_ours(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(f".{dest.name}.mam-tmp")
    with open(new, "rb") as source, open(temp, "wb") as out:
        shutil.copyfileobj(source, out)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(temp, 0o755)
    os.replace(temp, dest)


def run_self_update(options: SelfUpdateOptions, feedback: ConsoleFeedback) -> dict[str, Any]:
    from ..machine._host_layout import host_layout
    from ..release._download import DownloadSettings
    from ..release._release_fetch import fetch_listed, fetch_optional, fetch_sums_bytes
    from ..release._signature import SIGNATURE_NAME
    from ..release._staging import Staging
    from ..release._sums import parse_sums

    base = update_url(options.location)
    net = DownloadSettings.for_command(options.timeout, options.progress)
    dest = installed_path(host_layout())
    _check_ours(dest)
    with Staging(prefix="mam-self-update-") as staging:
        sums = fetch_sums_bytes(base, staging.path, net)
        listed = parse_sums(sums, f"{base}/SHA256SUMS")
        if PYZ_NAME not in listed:
            raise IntegrityError(f"{base}/SHA256SUMS lists no {PYZ_NAME}; is it a release?")
        signature = None
        if options.sha256 is None:
            signature = fetch_optional(base, SIGNATURE_NAME, staging.path, net)
        trust = _vouch(sums, listed, signature, options.sha256)
        pyz = fetch_listed(base, PYZ_NAME, listed, staging.path, MAX_PYZ, net)
        version = pyz_version(pyz)
        if version is None:
            raise IntegrityError(f"{base}/{PYZ_NAME} is not a mam-install pyz; refusing")
        _check_version(version, options.allow_downgrade)
        same = dest.is_file() and dest.read_bytes() == pyz.read_bytes()
        if not same:
            _smoke_test(pyz, version)
            _place(pyz, dest)
    said = "is already" if same else "is now"
    feedback.info(f"mam-install {version} ({trust}) {said} {dest}")
    return {
        "command": "self update",
        "from": base,
        "previous_version": __version__,
        "version": version,
        "path": str(dest),
        "trust": trust,
        "applied": not same,
    }


def run_self_uninstall(feedback: ConsoleFeedback, *, dry_run: bool) -> dict[str, Any]:
    from ..machine._host_layout import host_layout

    dest = installed_path(host_layout())
    present = dest.exists() or dest.is_symlink()
    if present:
        _check_ours(dest)
    if present and not dry_run:
        dest.unlink()
    if not present:
        feedback.info(f"{dest} is not there; nothing to remove")
    else:
        feedback.info(
            f"{'would remove' if dry_run else 'removed'} {dest}; the per-user tools, units and "
            "PATH blocks stay until `python3 mam-install.pyz uninstall --host`"
        )
    return {"command": "self uninstall", "path": str(dest), "removed": present and not dry_run}
