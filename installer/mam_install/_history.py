"""Released manifests, as the set of hashes each workspace path has ever had (legacy adoption)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from ._errors import IntegrityError
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


def released_hashes(manifests: Iterable[Manifest]) -> Mapping[str, frozenset[str]]:
    """workspace path -> every SHA-256 a released version put there."""
    hashes: dict[str, set[str]] = {}
    for manifest in manifests:
        for entry in manifest.in_scope("workspace"):
            hashes.setdefault(entry.path, set()).add(entry.sha256)
    return {path: frozenset(values) for path, values in hashes.items()}
