"""Test helpers: small real payloads and releases (scripts/payload_archive.py), tree snapshots.

Tests import these by name (`from workspaces import ...`); conftest.py only holds fixtures, so no
test depends on which conftest module Python happens to have imported.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from payload_archive import build_payload  # noqa: E402

V1_FILES: dict[str, tuple[bytes, int]] = {
    "workspace/AGENT.md": (b"# How agents use mam (v1)\n", 0o644),
    "workspace/.env.example": (b"MAM_TMUX_SOCKET=mam\n", 0o644),
    "workspace/.agents/skills/lib.sh": (b"#!/bin/sh\n# lib v1\n", 0o755),
    "workspace/.agents/skills/tmux/send-message.sh": (b"#!/bin/sh\n# send v1\n", 0o755),
    "workspace/.agents/skills/old-tool.sh": (b"#!/bin/sh\n# dropped in v2\n", 0o755),
}

V2_FILES: dict[str, tuple[bytes, int]] = {
    "workspace/AGENT.md": (b"# How agents use mam (v2)\n", 0o644),
    "workspace/.env.example": (b"MAM_TMUX_SOCKET=mam\n", 0o644),
    "workspace/.agents/skills/lib.sh": (b"#!/bin/sh\n# lib v2\n", 0o755),
    "workspace/.agents/skills/tmux/send-message.sh": (b"#!/bin/sh\n# send v2\n", 0o755),
    "workspace/.agents/skills/mqtt/mam_mqtt.py": (b"print('new in v2')\n", 0o644),
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_payload(directory: Path, files: Mapping[str, tuple[bytes, int]], version: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "VERSION").write_text(version + "\n")
    for rel, (data, mode) in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    return directory


def make_release(base: Path, files: Mapping[str, tuple[bytes, int]], version: str) -> Path:
    """A release directory (archive + manifest) for ``files`` at ``version``."""
    payload = write_payload(base / f"payload-{version}", files, version)
    out = base / f"release-{version}"
    build_payload(payload, out, mtime=1_700_000_000)
    return out


def tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root`` except .mam/: file bytes, 'dir', or 'link -> target'."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir.parts[:1] == (".mam",):
            continue
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(rel_dir / name) if str(rel_dir) != "." else name
            if rel == ".mam":
                continue
            if path.is_symlink():
                out[rel] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = path.read_bytes()
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]
    return out


def expected_tree(files: Mapping[str, tuple[bytes, int]]) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for rel, (data, _mode) in files.items():
        path = rel.split("/", 1)[1]
        out[path] = data
        parts = path.split("/")
        for i in range(1, len(parts)):
            out["/".join(parts[:i])] = "dir"
    return out


def pinned(release: Path) -> list[str]:
    """``--from RELEASE --sha256 <its manifest's SHA-256>``: a test release is neither one this
    installer embeds nor one its release key signed, so, as a user would, the test pins it."""
    manifest = next(Path(release).glob("manifest-*.json"))
    return ["--from", str(release), "--sha256", sha(manifest.read_bytes())]
