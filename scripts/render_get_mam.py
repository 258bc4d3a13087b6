"""Render the get-mam.py bootstrap from its template with the release's version, hash and URL."""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["PLACEHOLDERS", "TEMPLATE", "render_get_mam"]

TEMPLATE = Path(__file__).resolve().with_name("get-mam.py.in")
PLACEHOLDERS = ("@MAM_VERSION@", "@MAM_PYZ_SHA256@", "@MAM_RELEASE_URL@")

_ANY_PLACEHOLDER = re.compile(r"@MAM_[A-Z0-9_]+@")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# The values land inside double-quoted Python string literals: nothing that could end one.
_URL_CHARS = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+")


def render_get_mam(template: str, *, version: str, pyz_sha256: str, base_url: str) -> str:
    """Fill the template's placeholders; ``ValueError`` for a bad value or a leftover one.

    ``base_url`` is the release directory holding ``mam-install.pyz``: https://, or http:// to
    this machine for tests. Every placeholder must occur in ``template`` and none may remain.
    """
    if not _VERSION.fullmatch(version):
        raise ValueError(f"version {version!r} is not a release version like 1.2.3")
    if not _SHA256.fullmatch(pyz_sha256):
        raise ValueError(f"pyz_sha256 {pyz_sha256!r} is not 64 lowercase hex digits")
    _check_base_url(base_url)
    for placeholder in PLACEHOLDERS:
        if placeholder not in template:
            raise ValueError(f"the template has no {placeholder}; is it get-mam.py.in?")
    rendered = (
        template.replace("@MAM_VERSION@", version)
        .replace("@MAM_PYZ_SHA256@", pyz_sha256)
        .replace("@MAM_RELEASE_URL@", base_url.rstrip("/"))
    )
    leftover = _ANY_PLACEHOLDER.search(rendered)
    if leftover is not None:
        raise ValueError(f"the template still holds {leftover.group(0)} after rendering")
    return rendered


def _check_base_url(url: str) -> None:
    if not _URL_CHARS.fullmatch(url):
        raise ValueError(f"base_url {url!r} holds characters a URL should not")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            if host == "localhost" or ipaddress.ip_address(host).is_loopback:
                return
        except ValueError:
            pass
    raise ValueError(f"base_url {url!r} must be https:// (http:// only to this machine)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", required=True, help="the release version, e.g. 1.2.3")
    parser.add_argument("--pyz-sha256", required=True, help="SHA-256 of mam-install.pyz")
    parser.add_argument("--base-url", required=True, help="URL of the release directory")
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--output", type=Path, help="where to write get-mam.py (default stdout)")
    args = parser.parse_args(argv)
    try:
        rendered = render_get_mam(
            args.template.read_text(encoding="utf-8"),
            version=args.version,
            pyz_sha256=args.pyz_sha256,
            base_url=args.base_url,
        )
    except (OSError, ValueError) as exc:
        print(f"render_get_mam: {exc}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(rendered)
    else:
        # newline="" keeps the LF endings on every platform: the file is published as is.
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            out.write(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
