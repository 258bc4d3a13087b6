"""The strict `SHA256SUMS` format: parse it without skipping anything, and write it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NoReturn

from .._errors import IntegrityError

__all__ = ["format_sums", "is_release_basename", "parse_sums"]

# Artifact names are ours (mam-install.pyz, mam-payload-V.tar.gz, *.sigstore.json, ...), so the
# alphabet can be small. It rules out '/', '\\' (which sha256sum escapes), whitespace, control
# characters, a leading '.' ('.', '..', hidden files) and a leading '-' (read as an option).
_BASENAME = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9._+-]*")
_LINE = re.compile(r"([0-9a-f]{64})  (.+)")
_BINARY_MARKER = re.compile(r"[0-9a-fA-F]{64} \*")
_UPPERCASE = re.compile(r"(?=[0-9a-fA-F]{64} )[0-9a-f]*[A-F]")
_MAX_BASENAME = 255

_FIX = "download the release again or rebuild it with `python3 scripts/build.py`"


def is_release_basename(name: str) -> bool:
    """True when ``name`` may appear in a `SHA256SUMS` line (see the module's alphabet)."""
    return len(name) <= _MAX_BASENAME and _BASENAME.fullmatch(name) is not None


def parse_sums(data: bytes, origin: str) -> dict[str, str]:
    """Parse a `SHA256SUMS` file into ``{basename: sha256 hex}``, refusing anything not canonical.

    Every line is exactly ``<64 lowercase hex><two spaces><basename>`` followed by LF, the last
    line included: a file that does not end with LF is refused, because our writer always ends
    with LF and a missing one is the mark of a truncated download. Also refused, each with the
    1-based line number: an empty file, CRLF or a bare CR, blank lines, the ``*`` binary marker,
    uppercase hex, leading or trailing spaces, a name with ``/``, ``..`` or outside the alphabet
    of `is_release_basename`, a name listed twice, and bytes that are not ASCII.
    """
    if not data:
        raise IntegrityError(f"{origin} is empty; it must list every artifact; {_FIX}")
    lines = data.split(b"\n")
    if lines[-1] != b"":
        _refuse(origin, len(lines), "does not end with a newline (truncated?)")
    sums: dict[str, str] = {}
    for number, raw in enumerate(lines[:-1], start=1):
        digest, name = _parse_line(raw, origin, number)
        if name in sums:
            _refuse(origin, number, f"lists {name!r} a second time")
        sums[name] = digest
    return sums


def format_sums(entries: Mapping[str, str]) -> bytes:
    """Write ``{basename: sha256 hex}`` as `SHA256SUMS` bytes, sorted by name, LF-terminated.

    Raises ``ValueError`` for a name or digest `parse_sums` would refuse: that is a bug in the
    caller, never something to publish.
    """
    if not entries:
        raise ValueError("SHA256SUMS needs at least one entry")
    out: list[str] = []
    for name in sorted(entries):
        digest = entries[name]
        if not is_release_basename(name):
            raise ValueError(f"{name!r} is not a valid artifact basename for SHA256SUMS")
        if _LINE.fullmatch(f"{digest}  x") is None:
            raise ValueError(f"{digest!r} for {name!r} is not 64 lowercase hex digits")
        out.append(f"{digest}  {name}\n")
    return "".join(out).encode("ascii")


def _parse_line(raw: bytes, origin: str, number: int) -> tuple[str, str]:
    if not raw:
        _refuse(origin, number, "is blank")
    if b"\r" in raw:
        _refuse(origin, number, "has a carriage return (CRLF line ending); only LF is allowed")
    try:
        line = raw.decode("ascii")
    except UnicodeDecodeError:
        _refuse(origin, number, "holds bytes that are not ASCII")
    if _BINARY_MARKER.match(line):
        _refuse(origin, number, "uses the '*' binary marker; only '<hex>  <name>' is allowed")
    if _UPPERCASE.match(line):
        _refuse(origin, number, "has uppercase hex; only lowercase is allowed")
    match = _LINE.fullmatch(line)
    if match is None:
        _refuse(origin, number, f"is not '<64 lowercase hex>  <name>': {_excerpt(line)}")
    digest, name = match.group(1), match.group(2)
    if name.startswith("*"):
        _refuse(origin, number, f"has a name starting with '*': {_excerpt(name)}")
    if "/" in name or ".." in name:
        _refuse(origin, number, f"names a path, not a basename: {_excerpt(name)}")
    if name != name.strip():
        _refuse(origin, number, f"has spaces around the name: {_excerpt(name)}")
    if not is_release_basename(name):
        _refuse(origin, number, f"has a name outside [A-Za-z0-9._+-]: {_excerpt(name)}")
    return digest, name


def _excerpt(text: str) -> str:
    # Keep the one-line message one line and short whatever the file holds.
    shown = text if len(text) <= 80 else text[:77] + "..."
    return repr(shown)


def _refuse(origin: str, number: int, what: str) -> NoReturn:
    raise IntegrityError(f"{origin} line {number} {what}; {_FIX}")
