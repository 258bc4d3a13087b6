"""Rendering unit, plist and config templates: fill ``@NAME@`` placeholders, safely per format.

Placeholders are replaced in one pass, so a value that itself contains ``@...@`` is never
expanded again. Each format escapes (or refuses) what would change the meaning of the file: a
plist value is XML-escaped; a systemd value has ``%`` doubled (specifiers are expanded on every
line a value can reach) and may not hold whitespace, quotes, backslashes or ``$``, which would
split or re-interpret an ``ExecStart=`` command line that the template does not quote. No format
accepts a newline, which could inject a directive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

from .._errors import IntegrityError, PlatformError

__all__ = ["TemplateFormat", "UnsafeValue", "format_of", "leftover_placeholders", "render"]

TemplateFormat = Literal["systemd", "plist", "text"]

_PLACEHOLDER = re.compile(rb"@([A-Z][A-Z0-9_]*)@")
_MAM_PLACEHOLDER = re.compile(rb"@(MAM_[A-Z0-9_]+)@")
_SYSTEMD_SUFFIXES = (".service", ".socket", ".timer", ".path", ".target", ".mount")
_SYSTEMD_UNSAFE = re.compile(r"[\s\"'\\$;]")
_XML_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&apos;"))


def _xml_escape(value: str) -> str:
    """What xml.sax.saxutils.escape does with quotes, without importing urllib for it."""
    for raw, entity in _XML_ENTITIES:
        value = value.replace(raw, entity)
    return value


class UnsafeValue(PlatformError):
    """A value (a path, usually) cannot be written into this kind of file without changing it."""


def format_of(name: str) -> TemplateFormat:
    """The format of a template, from its file name."""
    if name.endswith(_SYSTEMD_SUFFIXES):
        return "systemd"
    if name.endswith(".plist"):
        return "plist"
    return "text"


def _escape(name: str, value: str, fmt: TemplateFormat, origin: str) -> str:
    if "\n" in value or "\r" in value or "\x00" in value:
        raise UnsafeValue(f"{origin}: the value of @{name}@ ({value!r}) holds a line break")
    if fmt == "plist":
        return _xml_escape(value)
    if fmt == "systemd":
        bad = _SYSTEMD_UNSAFE.search(value)
        if bad is not None:
            raise UnsafeValue(
                f"{origin}: the value of @{name}@ ({value!r}) contains {bad.group()!r}, which a "
                "systemd unit line cannot hold unquoted; choose a path without spaces, quotes, "
                "backslashes or '$' (e.g. set XDG_DATA_HOME) and run again"
            )
        return value.replace("%", "%%")
    return value


def leftover_placeholders(data: bytes) -> list[str]:
    """The distinct ``@MAM_*@`` placeholders still in ``data``, in order of appearance."""
    seen: list[str] = []
    for match in _MAM_PLACEHOLDER.finditer(data):
        name = match.group(1).decode()
        if name not in seen:
            seen.append(name)
    return seen


def render(
    template: bytes,
    values: Mapping[str, str],
    *,
    origin: str,
    fmt: TemplateFormat | None = None,
    keep: frozenset[str] = frozenset(),
) -> bytes:
    """Fill ``template``'s placeholders from ``values`` (names without the ``@``).

    Any ``@MAM_*@`` placeholder left afterwards is an IntegrityError naming ``origin``, except
    the names in ``keep`` (filled later, e.g. once per agent). ``fmt`` defaults to the format
    of ``origin``'s file name.
    """
    fmt = format_of(origin) if fmt is None else fmt
    escaped = {name: _escape(name, value, fmt, origin).encode() for name, value in values.items()}

    def fill(match: re.Match[bytes]) -> bytes:
        return escaped.get(match.group(1).decode(), match.group(0))

    rendered = _PLACEHOLDER.sub(fill, template)
    left = [name for name in leftover_placeholders(rendered) if name not in keep]
    if left:
        names = ", ".join(f"@{name}@" for name in left)
        raise IntegrityError(
            f"{origin}: placeholder {names} has no value in this mam-install; "
            "use the mam-install release that shipped this payload"
        )
    return rendered
