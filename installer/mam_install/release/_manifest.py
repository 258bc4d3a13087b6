"""Payload manifests: parsing (strict, fail-closed) and the built-in path allowlists."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from .._errors import IntegrityError
from .._hashing import is_sha256_hex

Scope = Literal["workspace", "host"]
SCOPES: tuple[Scope, ...] = ("workspace", "host")
MANIFEST_SCHEMA = 1

# The installer's own allowlist: whatever a manifest says, nothing lands anywhere else.
WORKSPACE_DIRS = (".agents/",)
WORKSPACE_FILES = ("AGENT.md", ".env.example")
HOST_DIRS = ("tools/", "units/systemd/", "units/launchd/", "mosquitto/")

# Limits on what one payload may hold; far above the real payload, far below a disk-filling bomb.
MAX_FILE_SIZE = 16 * 1024 * 1024
MAX_TOTAL_SIZE = 128 * 1024 * 1024
MAX_FILES = 4096
ALLOWED_MODES = (0o644, 0o755)
NEW_SUFFIX = ".mam-new"
TMP_SUFFIX = ".mam-tmp"  # `.<name>.mam-tmp`: where a file is written before its rename


@dataclass(frozen=True)
class ManifestFile:
    """One payload file: where it goes in its scope, its hash, size and mode."""

    path: str
    sha256: str
    size: int
    mode: int
    scope: Scope

    @property
    def member(self) -> str:
        """The file's name inside the payload archive."""
        return f"{self.scope}/{self.path}"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "mode": f"{self.mode:04o}",
            "scope": self.scope,
        }


@dataclass(frozen=True)
class ArchiveRef:
    """The payload archive a release manifest pins, by name, SHA-256 and size."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class SourceRef:
    """The commit of the repository a payload was built from."""

    repository: str
    ref: str
    commit: str


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest: the payload's files and, in a release manifest, its archive."""

    schema: int
    name: str
    version: str
    files: tuple[ManifestFile, ...]
    archive: ArchiveRef | None = None
    source: SourceRef | None = None

    def in_scope(self, scope: Scope) -> tuple[ManifestFile, ...]:
        return tuple(f for f in self.files if f.scope == scope)

    def by_member(self) -> dict[str, ManifestFile]:
        return {f.member: f for f in self.files}

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"schema": self.schema, "name": self.name, "version": self.version}
        if self.source is not None:
            doc["source"] = {
                "repository": self.source.repository,
                "ref": self.source.ref,
                "commit": self.source.commit,
            }
        if self.archive is not None:
            doc["archive"] = {
                "name": self.archive.name,
                "sha256": self.archive.sha256,
                "size": self.archive.size,
            }
        doc["files"] = [f.to_json() for f in self.files]
        return doc

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n"


# C0 and C1 controls, DEL, and the Unicode line and paragraph separators. One regex search, not
# a Python loop per character: a 4,000-file receipt is checked path by path on every run.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_relative_path(path: str, origin: str) -> None:
    """Refuse anything but a plain relative POSIX path: no `..`, no absolute, no oddities."""
    if not path or len(path) > 1024:
        raise IntegrityError(f"{origin}: empty or over-long path {path[:80]!r}; refusing")
    if path.startswith("/") or "\\" in path or "\x00" in path or path.endswith("/"):
        raise IntegrityError(f"{origin}: path {path!r} is not a plain relative path; refusing")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise IntegrityError(f"{origin}: path {path!r} contains {part or 'an empty'!r} part")
        if _CONTROL.search(part):
            raise IntegrityError(f"{origin}: path {path!r} contains control characters")


def check_allowed(path: str, scope: Scope, origin: str) -> None:
    """The built-in allowlist: a manifest cannot place files outside the runtime's own places."""
    check_relative_path(path, origin)
    name = path.rsplit("/", 1)[-1]
    if name.endswith((NEW_SUFFIX, TMP_SUFFIX)):
        raise IntegrityError(f"{origin}: {path!r} is a name mam-install keeps for itself")
    if scope == "workspace":
        allowed = path in WORKSPACE_FILES or path.startswith(WORKSPACE_DIRS)
    else:
        allowed = path.startswith(HOST_DIRS)
    if not allowed:
        raise IntegrityError(
            f"{origin}: {scope} path {path!r} is outside the installer's allowlist; refusing"
        )


def _field(doc: dict[str, Any], key: str, kind: type, origin: str) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise IntegrityError(f"{origin}: field {key!r} is missing or not a {kind.__name__}")
    return value


def _parse_file(entry: Any, origin: str) -> ManifestFile:
    if not isinstance(entry, dict):
        raise IntegrityError(f"{origin}: a files entry is not an object")
    path = _field(entry, "path", str, origin)
    scope = _field(entry, "scope", str, origin)
    if scope not in SCOPES:
        raise IntegrityError(f"{origin}: {path!r} has unknown scope {scope!r}")
    check_allowed(path, scope, origin)
    sha256 = _field(entry, "sha256", str, origin)
    if not is_sha256_hex(sha256):
        raise IntegrityError(f"{origin}: {path!r} has a malformed sha256 {sha256[:80]!r}")
    size = _field(entry, "size", int, origin)
    if not 0 <= size <= MAX_FILE_SIZE:
        raise IntegrityError(f"{origin}: {path!r} has size {size}, over the {MAX_FILE_SIZE} limit")
    mode_text = _field(entry, "mode", str, origin)
    if not (3 <= len(mode_text) <= 4 and all(c in "01234567" for c in mode_text)):
        raise IntegrityError(f"{origin}: {path!r} has malformed mode {mode_text!r}")
    mode = int(mode_text, 8)
    if mode not in ALLOWED_MODES:
        raise IntegrityError(f"{origin}: {path!r} has mode {mode_text}; only 0644/0755 allowed")
    return ManifestFile(path=path, sha256=sha256, size=size, mode=mode, scope=scope)


def parse_manifest(data: bytes, origin: str) -> Manifest:
    """Parse and validate a manifest; any doubt is an IntegrityError naming ``origin``."""
    doc = load_json_strict(data, origin, IntegrityError)
    if not isinstance(doc, dict):
        raise IntegrityError(f"{origin}: a manifest is a JSON object")
    schema = _field(doc, "schema", int, origin)
    if schema != MANIFEST_SCHEMA:
        raise IntegrityError(
            f"{origin}: manifest schema {schema} is not {MANIFEST_SCHEMA}; "
            "use the mam-install release that made it"
        )
    name = _field(doc, "name", str, origin)
    version = _field(doc, "version", str, origin)
    _check_version(version, origin)
    entries = _field(doc, "files", list, origin)
    if len(entries) > MAX_FILES:
        raise IntegrityError(f"{origin}: {len(entries)} files is over the {MAX_FILES} limit")
    files = tuple(_parse_file(entry, origin) for entry in entries)
    seen: set[str] = set()
    for f in files:
        if f.member in seen:
            raise IntegrityError(f"{origin}: {f.member!r} is listed twice")
        seen.add(f.member)
    _check_no_file_is_a_parent(files, origin)
    if sum(f.size for f in files) > MAX_TOTAL_SIZE:
        raise IntegrityError(f"{origin}: total size is over the {MAX_TOTAL_SIZE} limit")
    return Manifest(
        schema=schema,
        name=name,
        version=version,
        files=files,
        archive=_parse_archive(doc.get("archive"), origin),
        source=_parse_source(doc.get("source"), origin),
    )


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise ValueError(f"key {key!r} appears twice")
        doc[key] = value
    return doc


def load_json_strict(data: bytes, origin: str, error: type[Exception]) -> Any:
    """JSON that two readers cannot read differently: UTF-8, no duplicate keys, bounded depth."""
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_refuse_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise error(f"{origin}: not valid JSON ({str(exc)[:120]}); refusing") from None


def _check_version(version: str, origin: str) -> None:
    allowed = set("0123456789abcdefghijklmnopqrstuvwxyz.+-_!ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    if not version or len(version) > 64 or not set(version) <= allowed or version[0] == ".":
        raise IntegrityError(f"{origin}: malformed version {version[:80]!r}")


def _check_no_file_is_a_parent(files: tuple[ManifestFile, ...], origin: str) -> None:
    paths = {(f.scope, f.path) for f in files}
    for scope, path in paths:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if (scope, "/".join(parts[:i])) in paths:
                raise IntegrityError(f"{origin}: {path!r} lies under another listed file")


def _parse_archive(value: Any, origin: str) -> ArchiveRef | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise IntegrityError(f"{origin}: field 'archive' is not an object")
    name = _field(value, "name", str, origin)
    check_relative_path(name, origin)
    if "/" in name:
        raise IntegrityError(f"{origin}: archive name {name!r} is not a plain file name")
    sha256 = _field(value, "sha256", str, origin)
    if not is_sha256_hex(sha256):
        raise IntegrityError(f"{origin}: archive sha256 {sha256[:80]!r} is malformed")
    size = _field(value, "size", int, origin)
    if not 0 < size <= MAX_TOTAL_SIZE:
        raise IntegrityError(f"{origin}: archive size {size} is out of range")
    return ArchiveRef(name=name, sha256=sha256, size=size)


def _parse_source(value: Any, origin: str) -> SourceRef | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise IntegrityError(f"{origin}: field 'source' is not an object")
    commit = _field(value, "commit", str, origin)
    if len(commit) != 40 or not all(c in "0123456789abcdef" for c in commit):
        raise IntegrityError(f"{origin}: source commit {commit[:80]!r} is not a full 40-hex SHA")
    return SourceRef(
        repository=_field(value, "repository", str, origin),
        ref=_field(value, "ref", str, origin),
        commit=commit,
    )
