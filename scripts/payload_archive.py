"""Turn payload/ into a manifest and a reproducible .tar.gz (for build.py, manifest.py, tests)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCOPES = ("workspace", "host")
MANIFEST_MEMBER = "manifest.json"
IGNORED_NAMES = {"__pycache__", ".DS_Store", ".pytest_cache", ".mypy_cache"}


@dataclass(frozen=True)
class PayloadFile:
    scope: str
    path: str
    data: bytes
    mode: int

    @property
    def member(self) -> str:
        return f"{self.scope}/{self.path}"

    def entry(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": hashlib.sha256(self.data).hexdigest(),
            "size": len(self.data),
            "mode": f"{self.mode:04o}",
            "scope": self.scope,
        }


def read_version(payload_dir: Path) -> str:
    return (payload_dir / "VERSION").read_text().strip()


def collect_payload(payload_dir: Path) -> list[PayloadFile]:
    """Every file under payload/<scope>/, symlinks inside payload/ read as their targets."""
    payload_dir = payload_dir.resolve()
    files: list[PayloadFile] = []
    for scope in SCOPES:
        base = payload_dir / scope
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_NAMES)
            for name in sorted(filenames):
                if name in IGNORED_NAMES or name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(dirpath) / name
                target = path.resolve()
                if payload_dir not in target.parents:
                    raise SystemExit(f"{path} points outside payload/ ({target}); refusing")
                executable = target.stat().st_mode & stat.S_IXUSR
                files.append(
                    PayloadFile(
                        scope=scope,
                        path=path.relative_to(base).as_posix(),
                        data=target.read_bytes(),
                        mode=0o755 if executable else 0o644,
                    )
                )
    return sorted(files, key=lambda f: f.member)


def content_manifest(files: list[PayloadFile], version: str) -> dict[str, Any]:
    """The manifest without release facts: what `manifests/<version>.json` commits."""
    return {"schema": 1, "name": "mam", "version": version, "files": [f.entry() for f in files]}


def dumps(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2) + "\n").encode()


def _tarinfo(name: str, size: int, mode: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def archive_bytes(files: list[PayloadFile], manifest: dict[str, Any], mtime: int) -> bytes:
    """A byte-for-byte reproducible .tar.gz: sorted names, fixed mtime, owner 0, fixed modes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        manifest_data = dumps(manifest)
        tar.addfile(
            _tarinfo(MANIFEST_MEMBER, len(manifest_data), 0o644, mtime), io.BytesIO(manifest_data)
        )
        for f in files:
            tar.addfile(_tarinfo(f.member, len(f.data), f.mode, mtime), io.BytesIO(f.data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=mtime, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def release_manifest(
    content: dict[str, Any], archive_name: str, archive: bytes, source: dict[str, str] | None
) -> dict[str, Any]:
    """The manifest that ships beside the archive: content plus the archive's hash and source."""
    doc = {k: v for k, v in content.items() if k != "files"}
    if source is not None:
        doc["source"] = source
    doc["archive"] = {
        "name": archive_name,
        "sha256": hashlib.sha256(archive).hexdigest(),
        "size": len(archive),
    }
    doc["files"] = content["files"]
    return doc


def build_payload(
    payload_dir: Path, out_dir: Path, *, mtime: int, source: dict[str, str] | None = None,
    version: str | None = None,
) -> tuple[Path, Path]:
    """Write ``mam-payload-V.tar.gz`` and ``manifest-V.json`` into ``out_dir``; return both."""
    version = version or read_version(payload_dir)
    files = collect_payload(payload_dir)
    content = content_manifest(files, version)
    data = archive_bytes(files, content, mtime)
    archive = out_dir / f"mam-payload-{version}.tar.gz"
    manifest = out_dir / f"manifest-{version}.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(data)
    manifest.write_bytes(dumps(release_manifest(content, archive.name, data, source)))
    return archive, manifest
