"""The offline release signature: an Ed25519 signature of `SHA256SUMS`, checked inside the pyz.

Formats (both ASCII, LF line endings, parsed strictly):

- ``SHA256SUMS.ed25519``: one line, the standard base64 of the 64-byte signature of the exact
  bytes of ``SHA256SUMS``.
- the public key file (``checksums/release-signing-key.pub``, built into the pyz): one standard
  base64 32-byte key per line; blank lines and ``#`` comments are ignored, so a rotation can list
  the old and the new key side by side.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from .._errors import IntegrityError

__all__ = [
    "SIGNATURE_NAME",
    "encode_signature",
    "key_id",
    "parse_public_keys",
    "parse_signature",
    "verify_sums_signature",
]

SIGNATURE_NAME = "SHA256SUMS.ed25519"
MAX_SIGNATURE_FILE = 256


def key_id(key: bytes) -> str:
    """A short name for a key in messages and receipts: the first 16 hex of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:16]


def _b64(text: str, length: int, what: str, origin: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != length or base64.b64encode(raw).decode("ascii") != text:
        raise IntegrityError(f"{origin}: {what} is not the base64 of {length} bytes; refusing")
    return raw


def parse_public_keys(data: bytes, origin: str) -> list[bytes]:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise IntegrityError(f"{origin}: not ASCII; rebuild the installer") from None
    keys = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        keys.append(_b64(line, 32, f"line {number}", origin))
    return keys


def parse_signature(data: bytes, origin: str) -> bytes:
    if len(data) > MAX_SIGNATURE_FILE or not data.endswith(b"\n"):
        raise IntegrityError(f"{origin}: not one base64 line ending with a newline; refusing")
    try:
        line = data[:-1].decode("ascii")
    except UnicodeDecodeError:
        raise IntegrityError(f"{origin}: holds bytes that are not ASCII; refusing") from None
    return _b64(line, 64, "the signature", origin)


def encode_signature(signature: bytes) -> bytes:
    """The bytes of a ``SHA256SUMS.ed25519`` file (for scripts/sign.py and tests)."""
    return base64.b64encode(signature) + b"\n"


def verify_sums_signature(
    sums: bytes, signature_file: bytes, keys: list[bytes], origin: str
) -> str:
    """Return the id of the built-in key that signed ``sums``; raise IntegrityError otherwise."""
    from ._ed25519 import verify

    signature = parse_signature(signature_file, origin)
    if not keys:
        raise IntegrityError(
            f"{origin}: this installer was built without a release signing key, so it cannot "
            "check the signature; pin the release with --sha256 instead"
        )
    for key in keys:
        if verify(key, sums, signature):
            return key_id(key)
    raise IntegrityError(
        f"{origin}: the signature of SHA256SUMS does not verify against the release key built "
        f"into this installer ({', '.join(key_id(k) for k in keys)}); the release was altered "
        "or signed by someone else: do not install it, and report it"
    )
