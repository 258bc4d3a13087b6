"""Released manifests, as the hashes each workspace path has ever had and in which version."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from .._errors import IntegrityError
from ._manifest import Manifest, parse_manifest


def read_history(directory: Path | None) -> list[Manifest]:
    if directory is None or not directory.is_dir():
        return []
    manifests = []
    for path in sorted(directory.glob("*.json")):
        if path.name.endswith(".schema.json"):
            continue
        try:
            manifests.append(parse_manifest(path.read_bytes(), str(path)))
        except IntegrityError:
            continue  # a damaged history entry only means fewer files are recognised
    return manifests


def released_hashes(manifests: Iterable[Manifest]) -> Mapping[str, Mapping[str, str]]:
    """workspace path -> every SHA-256 a released version put there -> the newest such version."""
    def order(manifest: Manifest) -> list[tuple[int, int | str]]:
        # Release numbers compared part by part without importing packaging (a no-op re-install
        # plans from here and must stay cheap, DESIGN §9); a pre-release tag sorts as text.
        return [(0, int(p)) if p.isdigit() else (1, p) for p in manifest.version.split(".")]

    hashes: dict[str, dict[str, str]] = {}
    for manifest in sorted(manifests, key=order):
        for entry in manifest.in_scope("workspace"):
            hashes.setdefault(entry.path, {})[entry.sha256] = manifest.version
    return hashes
