"""Offline verification of sigstore bundles, when the optional `sigstore` package is installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import IntegrityError, PlatformError
from .._hashing import sha256_file

if TYPE_CHECKING:
    from sigstore.verify import Verifier

__all__ = ["INSTALL_HINT", "sigstore_available", "verify_bundle"]

# mam-install is not on PyPI (so no "mam-install[sigstore]" extra to point users at): install
# sigstore itself into a Python, then run the pyz with that Python, which sees it.
INSTALL_HINT = (
    "python3 -m pip install 'sigstore>=4.1,<5', then run mam-install with that python3 "
    "(python3 mam-install.pyz verify ...)"
)


def sigstore_available() -> bool:
    """True when `sigstore` can be imported; finding it does not import it."""
    try:
        return importlib.util.find_spec("sigstore") is not None
    except (ImportError, ValueError):
        return False


def verify_bundle(
    artifact: Path,
    bundle: Path,
    *,
    identity: str,
    issuer: str,
    trusted_root: Path | None,
) -> None:
    """Check that ``bundle`` signs ``artifact`` for ``identity`` from ``issuer``, offline.

    The signature, the certificate chain up to the trusted root's Fulcio CA, the transparency
    log inclusion proof and the signer's identity and OIDC issuer are all checked.
    ``trusted_root`` pins the root of trust and needs no network; without it sigstore's public
    ``Verifier.production()`` is used: its trusted root refreshed over TUF (so a key rotation
    is followed), or from its TUF cache when offline. The artifact is hashed in streaming
    fashion, so size costs no memory.

    Raises `PlatformError` (exit 3) when sigstore is not installed, and `IntegrityError`
    (exit 5) for everything else: unreadable or malformed bundle or root, bad signature,
    wrong identity or issuer.
    """
    try:
        from sigstore.hashes import Hashed
        from sigstore.models import Bundle
        from sigstore.verify.policy import Identity
        from sigstore_models.common.v1 import HashAlgorithm
    except ImportError as exc:
        raise PlatformError(
            f"cannot check {bundle}: the sigstore package is not installed; run "
            f"`{INSTALL_HINT}` and verify again"
        ) from exc

    try:
        bundle_json = bundle.read_bytes()
        digest = bytes.fromhex(sha256_file(artifact))
    except OSError as exc:
        raise IntegrityError(
            f"cannot check {bundle}: {exc.filename} could not be read ({exc.strerror}); "
            "make sure the artifact and its .sigstore.json bundle are both present"
        ) from exc

    try:
        verifier = _verifier(trusted_root)
        parsed = Bundle.from_json(bundle_json)
        verifier.verify_artifact(
            Hashed(algorithm=HashAlgorithm.SHA2_256, digest=digest),
            parsed,
            Identity(identity=identity, issuer=issuer),
        )
    except IntegrityError:
        raise
    except Exception as exc:
        # Fail closed: whatever sigstore or its parsers raise on hostile input means "not verified".
        raise IntegrityError(
            f"{bundle} does not verify {artifact.name} for identity {identity!r} and issuer "
            f"{issuer!r}: {_one_line(exc)}; do not use this artifact, or check the identity "
            "and issuer you expect"
        ) from exc


def _verifier(path: Path | None) -> Verifier:
    from sigstore.models import TrustedRoot
    from sigstore.verify import Verifier

    if path is not None:
        try:
            return Verifier(trusted_root=TrustedRoot.from_file(str(path)))
        except Exception as exc:
            raise IntegrityError(
                f"the trusted root {path} could not be loaded ({_one_line(exc)}); pass the "
                "trusted_root.json of the sigstore instance that signed the release"
            ) from exc
    try:
        return Verifier.production()  # refreshes the trusted root over TUF
    except Exception as online:
        try:
            return Verifier.production(offline=True)  # no network: sigstore's TUF cache
        except Exception as exc:
            raise IntegrityError(
                f"sigstore's production trusted root could neither be refreshed over TUF "
                f"({_one_line(online)}) nor read from its cache ({_one_line(exc)}); connect once "
                "to the network, or pass --trusted-root trusted_root.json"
            ) from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
