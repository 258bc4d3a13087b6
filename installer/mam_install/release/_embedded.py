"""The payload inside the pyz: its release manifest, archive, and every released manifest."""

from __future__ import annotations

from pathlib import Path

from .._errors import PlatformError

DATA_DIR = "_data"


def data_dir() -> Path:
    """``mam_install/_data`` as a real directory: beside the package in a source tree, or where
    the pyz's entry unpacked it when the package runs from the pyz's bytecode zip
    (``<extraction>/<tag>/lib.zip/mam_install`` -> ``<extraction>/_data``)."""
    package = Path(__file__).parents[1]  # mam_install/, above release/
    path = package / DATA_DIR
    if package.parent.suffix == ".zip":
        path = package.parents[2] / DATA_DIR
    if not (path / "manifest.json").is_file():
        raise PlatformError(
            f"no embedded payload at {path}: this mam-install was not built with "
            "`python3 scripts/build.py`; build it, or pass --from a release directory"
        )
    return path


def embedded_manifest_path() -> Path:
    return data_dir() / "manifest.json"


def history_dir() -> Path | None:
    """The manifests of every released version, to recognise files older installers wrote."""
    try:
        path = data_dir() / "manifests"
    except PlatformError:
        return None
    return path if path.is_dir() else None


def embedded_payload_version() -> str | None:
    """The embedded payload's version, read without parsing the whole manifest (for --version)."""
    import json

    try:
        doc = json.loads(embedded_manifest_path().read_bytes())
    except (PlatformError, OSError, ValueError):
        return None
    version = doc.get("version") if isinstance(doc, dict) else None
    return version if isinstance(version, str) else None


# The release signing keys this installer trusts (scripts/build.py copies them from
# checksums/release-signing-key.pub, or from MAM_RELEASE_PUBKEY for a test build).
RELEASE_KEY_FILE = "release-signing-key.pub"


def released_manifest(name: str) -> Path | None:
    """An embedded copy of ``manifests/<name>``: ``V.json`` (the content manifest of a released
    version) or ``manifest-V.json`` (its release manifest, kept by the release workflow)."""
    directory = history_dir()
    if directory is None or "/" in name or name.startswith("."):
        return None
    path = directory / name
    return path if path.is_file() else None


def release_public_keys() -> list[bytes]:
    """The raw 32-byte Ed25519 release keys built into this installer; [] when it has none."""
    from ._signature import parse_public_keys

    try:
        path = data_dir() / RELEASE_KEY_FILE
    except PlatformError:
        return []
    if not path.is_file():
        return []
    return parse_public_keys(path.read_bytes(), str(path))
